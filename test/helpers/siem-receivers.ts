// Loopback stand-ins for a SIEM's inputs, written from the RFCs rather than from keyway's sender:
// RFC 6587 octet-counted syslog over TCP and over TLS (RFC 5425), one message per UDP datagram (RFC
// 5426), and an HTTPS endpoint taking JSON arrays. Each keeps every byte it received (for the canary
// search) and every message it parsed.

import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

export interface Receiver {
  port: number;
  /** Each message received, as text. */
  messages: string[];
  /** Every byte received, in order, per connection or datagram (after TLS: the plaintext). */
  bytes: Buffer[];
  /** Frames that did not follow the framing (should stay empty). */
  malformed: string[];
  close(): Promise<void>;
}

/**
 * RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG, MSG-LEN a non-zero decimal. `resetAfter`: the first
 * connection is reset once that many messages came on it (the rest of what it was sent is dropped).
 * `holdMs`: the first connection is read only after that long (a slow receiver: a sender catching up
 * writes several batches into the kernel before any is read).
 */
function octetCountedReader(receiver: Receiver, resetAfter?: number, holdMs = 0): (socket: Socket) => void {
  let connections = 0;
  return (socket) => {
    const first = connections++ === 0;
    const resets = first && resetAfter !== undefined;
    if (first && holdMs > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), holdMs);
    }
    let taken = 0;
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      receiver.bytes.push(chunk);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const space = pending.indexOf(0x20);
        if (space === -1) return;
        const lenText = pending.subarray(0, space).toString('latin1');
        if (!/^[1-9]\d{0,5}$/.test(lenText)) {
          receiver.malformed.push(pending.toString('utf8'));
          pending = Buffer.alloc(0);
          socket.destroy();
          return;
        }
        const len = Number(lenText);
        if (pending.length < space + 1 + len) return;
        receiver.messages.push(pending.subarray(space + 1, space + 1 + len).toString('utf8'));
        pending = pending.subarray(space + 1 + len);
        if (resets && ++taken >= resetAfter!) {
          socket.resetAndDestroy();
          return;
        }
      }
    });
    socket.on('error', () => undefined);
  };
}

async function listening(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

function tracked(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

export async function tcpReceiver(port = 0, options: { resetAfter?: number; holdMs?: number } = {}): Promise<Receiver> {
  const receiver: Receiver = { port: 0, messages: [], bytes: [], malformed: [], close: async () => undefined };
  const server = createTcpServer(octetCountedReader(receiver, options.resetAfter, options.holdMs));
  const sockets = tracked(server);
  receiver.port = await listening(server, port);
  receiver.close = closer(server, sockets);
  return receiver;
}

export async function tlsReceiver(tls: { cert: string; key: string }, port = 0): Promise<Receiver> {
  const receiver: Receiver = { port: 0, messages: [], bytes: [], malformed: [], close: async () => undefined };
  const server = createTlsServer({ cert: tls.cert, key: tls.key }, octetCountedReader(receiver));
  const sockets = tracked(server);
  server.on('tlsClientError', () => undefined);
  receiver.port = await listening(server, port);
  receiver.close = closer(server, sockets);
  return receiver;
}

export async function udpReceiver(): Promise<Receiver> {
  const receiver: Receiver = { port: 0, messages: [], bytes: [], malformed: [], close: async () => undefined };
  const socket = createSocket('udp4');
  socket.on('message', (msg) => {
    receiver.bytes.push(msg);
    receiver.messages.push(msg.toString('utf8'));
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  receiver.port = socket.address().port;
  receiver.close = () => new Promise((resolve) => socket.close(() => resolve()));
  return receiver;
}

/**
 * An HTTPS endpoint taking a JSON array per POST; `answer` gives the status (503: down, 401: a token
 * it refuses) from the request's headers, or `reset`: the connection is reset once the body has
 * begun to arrive (a receiver that accepts, then fails mid-batch), and nothing of it is kept.
 */
export async function httpsReceiver(
  tls: { cert: string; key: string },
  answer: (req: IncomingMessage) => number | 'reset' = () => 200,
): Promise<Receiver & { posts: number; headers: IncomingMessage['headers'][] }> {
  const receiver: Receiver & { posts: number; headers: IncomingMessage['headers'][] } = {
    port: 0,
    messages: [],
    bytes: [],
    malformed: [],
    posts: 0,
    headers: [],
    close: async () => undefined,
  };
  const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    receiver.headers.push(req.headers);
    const status = answer(req);
    if (status === 'reset') {
      // A TLS socket has no RST of its own to send: destroyed, it closes without an answer.
      req.once('data', () => req.socket.destroy());
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (status === 200) {
        receiver.posts++;
        receiver.bytes.push(body);
        try {
          for (const event of JSON.parse(body.toString('utf8')) as unknown[]) receiver.messages.push(JSON.stringify(event));
        } catch {
          receiver.malformed.push(body.toString('utf8'));
        }
      }
      res.writeHead(status).end();
    });
  });
  const sockets = tracked(server);
  receiver.port = await listening(server, 0);
  receiver.close = closer(server, sockets);
  return receiver;
}
