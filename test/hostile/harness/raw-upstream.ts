// A raw loopback upstream (plain TCP or TLS with the test CA's leaf) that frames what it receives with
// the strict framer in frames.ts, records every request with its exact byte boundaries, and answers
// either a small well-formed JSON echo or a scripted response (the response fuzzer's and the
// smuggling suite's malformed answers). What it could not frame is recorded as a framing failure.

import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { TLS_FIXTURES } from '../../helpers/fixtures.ts';
import { frameRequest, header } from './frames.ts';

export interface ReceivedRequest {
  method: string;
  target: string;
  bodyBytes: number;
  /** Which upstream connection, and the request's byte range on it. */
  connection: number;
  start: number;
  end: number;
  headers: Array<[string, string]>;
}

/** Bytes the upstream could not frame: keyway sent something a strict reader refuses. */
export interface FramingFailure {
  connection: number;
  reason: string;
  bytes: string;
}

/** A scripted answer: the bytes, and whether to close after them (default: close). */
export interface Scripted {
  bytes: Buffer;
  keepOpen?: boolean;
}

export interface RawUpstream {
  port: number;
  received: ReceivedRequest[];
  failures: FramingFailure[];
  /** Answers for request targets containing `/r/<key>/`: set by the test, used once or many times. */
  scripts: Map<string, Scripted>;
  /**
   * Bytes of requests not complete: on connections still open (a body still streaming) and on
   * connections that closed in the middle of one (kept, up to a thousand).
   */
  partial(): string[];
  /** Requests (and failures) recorded so far are handed over and forgotten. */
  drain(): { received: ReceivedRequest[]; failures: FramingFailure[] };
  close(): Promise<void>;
}

const SCRIPT_KEY = /\/r\/([A-Za-z0-9_-]+)\//;

export async function startRawUpstream(options: { tls: boolean }): Promise<RawUpstream> {
  const received: ReceivedRequest[] = [];
  const failures: FramingFailure[] = [];
  const scripts = new Map<string, Scripted>();
  const sockets = new Set<Socket>();
  const pending = new Map<Socket, () => Buffer>();
  const abandoned: string[] = [];
  let connections = 0;

  const onConnection = (socket: Socket) => {
    const connection = ++connections;
    sockets.add(socket);
    let buffered: Buffer = Buffer.alloc(0);
    let offset = 0; // bytes of this connection already consumed before `buffered`
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      pending.delete(socket);
      if (buffered.length > 0 && abandoned.length < 1000) abandoned.push(buffered.subarray(0, 4096).toString('latin1'));
    });
    pending.set(socket, () => buffered);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      for (;;) {
        const result = frameRequest(buffered, 0);
        if (result.kind === 'incomplete') return;
        if (result.kind === 'invalid') {
          failures.push({ connection, reason: result.reason, bytes: buffered.subarray(0, 512).toString('latin1') });
          socket.destroy();
          return;
        }
        const { frame } = result;
        received.push({
          method: frame.first,
          target: frame.second,
          bodyBytes: frame.body.length,
          connection,
          start: offset,
          end: offset + frame.end,
          headers: frame.headers,
        });
        buffered = buffered.subarray(frame.end);
        offset += frame.end;
        const key = SCRIPT_KEY.exec(frame.second)?.[1];
        const script = key === undefined ? undefined : scripts.get(key);
        if (script) {
          socket.write(script.bytes);
          if (!script.keepOpen) {
            socket.end();
            return;
          }
          continue;
        }
        const body = JSON.stringify({ target: frame.second, bytes: frame.body.length });
        const close = header(frame, 'connection')?.toLowerCase() === 'close';
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`,
        );
        if (close) {
          socket.end();
          return;
        }
      }
    });
  };

  const server: Server = options.tls ? createTlsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, onConnection) : createNetServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    received,
    failures,
    scripts,
    partial: () => [...[...pending.values()].map((read) => read().toString('latin1')).filter(Boolean), ...abandoned],
    drain() {
      return { received: received.splice(0), failures: failures.splice(0) };
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
