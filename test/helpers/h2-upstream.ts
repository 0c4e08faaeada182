import { once } from 'node:events';
import { createSecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { TLS_FIXTURES } from './fixtures.ts';

export interface H2Upstream {
  port: number;
  /** Request headers of every stream, in order (pseudo-headers included). */
  seen: IncomingHttpHeaders[];
  /** For each stream in `seen`, which session (numbered from 1 in order of arrival) carried it. */
  sessionOf: number[];
  /** HTTP/2 sessions opened to it so far: keyway multiplexes when this stays small. */
  sessions(): number;
  close(): Promise<void>;
}

/**
 * An HTTP/2-only upstream (ALPN h2, no HTTP/1.1 fallback) on 127.0.0.1:0, signed by the test CA:
 *   /echo      JSON of the request headers
 *   /stream    echoes each request DATA chunk as it arrives (bidirectional streaming)
 *   /trailers  a body, then trailers, one of which quotes the request's Authorization
 */
export async function startH2Upstream(): Promise<H2Upstream> {
  const seen: IncomingHttpHeaders[] = [];
  const sessionOf: number[] = [];
  const numbers = new WeakMap<object, number>();
  let sessions = 0;
  const server = createSecureServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key, allowHTTP1: false });
  server.on('session', (session) => numbers.set(session, ++sessions));
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    seen.push(headers);
    sessionOf.push(numbers.get(stream.session as object) ?? 0);
    stream.on('error', () => undefined);
    const path = String(headers[':path'] ?? '/').split('?')[0];
    if (path === '/stream') {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.on('data', (chunk: Buffer) => stream.write(chunk));
      stream.on('end', () => stream.end());
      return;
    }
    if (path === '/trailers') {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-status': '0', 'x-echo': String(headers.authorization ?? '') }));
      stream.end('body before the trailers');
      return;
    }
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ headers }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    sessionOf,
    sessions: () => sessions,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
