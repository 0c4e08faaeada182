// A loopback HTTP proxy that takes CONNECT only, to any host:port, and records each tunnel: what it
// was asked for and the bytes it carried each way (as latin1 text, so a test can look for an HTTP
// request line, a WebSocket upgrade, or a canary). Anything but CONNECT gets 405: what went
// through it was tunnelled, nothing else.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';

export interface Tunnel {
  /** host:port as the CONNECT named it. */
  authority: string;
  /** What the client sent through the tunnel, and what came back. */
  sent: string;
  received: string;
}

export interface ConnectRecorder {
  url: string;
  port: number;
  tunnels: Tunnel[];
  /** Requests that were not CONNECT (answered 405). */
  refused: string[];
  /** The local ports of the recorder's own connections onward (what a destination sees as its peer). */
  outbound(): number[];
  close(): Promise<void>;
}

export async function startConnectRecorder(): Promise<ConnectRecorder> {
  const tunnels: Tunnel[] = [];
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  const outbound: number[] = [];
  const server: Server = createServer((req, res) => {
    refused.push(`${req.method} ${req.url}`);
    res.writeHead(405, { connection: 'close' });
    res.end();
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const authority = req.url ?? '';
    const match = /^(.+):(\d+)$/.exec(authority);
    if (match === null) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const tunnel: Tunnel = { authority, sent: head.toString('latin1'), received: '' };
    tunnels.push(tunnel);
    const upstream = netConnect(Number(match[2]), match[1]!.replace(/^\[|\]$/g, ''));
    sockets.add(client).add(upstream);
    upstream.once('connect', () => {
      if (upstream.localPort !== undefined) outbound.push(upstream.localPort);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.on('data', (c: Buffer) => {
        tunnel.sent += c.toString('latin1');
        upstream.write(c);
      });
      upstream.on('data', (c: Buffer) => {
        tunnel.received += c.toString('latin1');
        client.write(c);
      });
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    upstream.on('error', () => {
      if (!client.destroyed && tunnel.received === '') client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      end();
    });
    upstream.on('close', end);
    client.on('error', end);
    client.on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnels,
    refused,
    outbound: () => [...outbound],
    async close() {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
