import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { TLS_FIXTURES } from './fixtures.ts';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

export interface TestUpstream {
  port: number;
  /** Every request the upstream saw, in order. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

export interface UpstreamOptions {
  /** 'trusted': signed by the test CA; 'untrusted': self-signed; 'plain': no TLS. */
  tls?: 'trusted' | 'untrusted' | 'plain';
  /** Answer 401 unless Authorization equals this. */
  requireAuthorization?: string;
  /** Answer 401 unless this resolves true (e.g. the token is active at the authorization server). */
  authorize?: (authorization: string | undefined) => Promise<boolean>;
  /**
   * How long a kept-alive connection may stay quiet before the server closes it (Node's default:
   * 5 s). A test that holds one stream open across slow steps (a reload under load) sets more.
   */
  keepAliveMs?: number;
  /** Where to listen: 127.0.0.1 on a free port unless given (another address, in a namespace of its own). */
  listen?: { host: string; port: number };
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that only watches returns nothing at all
  handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined) => boolean | void;
}

/**
 * A real HTTPS (or HTTP) server on 127.0.0.1:0 (or `listen`) with the routes the tests need:
 *   /echo          JSON of method, path, headers
 *   /download?n=N  N bytes, streamed
 *   /upload        counts the body bytes (not kept), answers {"bytes": N}
 *   /sse?n=N       N server-sent events, 100 ms apart
 *   /slow?ms=N     answers after N ms
 *   /ws            WebSocket echo that also reports the upgrade's Authorization header
 */
export async function startUpstream(options: UpstreamOptions = {}): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: 0 };
    seen.push(record);
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (options.requireAuthorization !== undefined && req.headers.authorization !== options.requireAuthorization) {
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    if (options.authorize) {
      req.pause();
      options.authorize(req.headers.authorization).then(
        (ok) => {
          if (ok) {
            serve(req, res, url, record); // attaches its listeners first, so no chunk is lost on resume
            req.resume();
            return;
          }
          req.resume();
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    serve(req, res, url, record);
  };
  const serve = (req: IncomingMessage, res: ServerResponse, url: URL, record: SeenRequest) => {
    if (url.pathname === '/upload') {
      req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: record.bodyBytes })));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      record.bodyBytes += chunk.length;
      chunks.push(chunk);
    });
    req.on('end', () => {
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      if (options.handler?.(req, res, body)) return;
      routes(url, req, res, body);
    });
  };
  const server: Server =
    options.tls === 'plain'
      ? createHttpServer(onRequest)
      : createHttpsServer(
          options.tls === 'untrusted'
            ? { cert: TLS_FIXTURES.untrustedCert, key: TLS_FIXTURES.untrustedKey }
            : { cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key },
          onRequest,
        );
  if (options.keepAliveMs !== undefined) server.keepAliveTimeout = options.keepAliveMs;
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (socket, req) => {
    seen.push({ method: 'GET', url: req.url ?? '', headers: req.headers, bodyBytes: 0 });
    socket.send(JSON.stringify({ authorization: req.headers.authorization ?? null }));
    socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
  });
  server.listen(options.listen?.port ?? 0, options.listen?.host ?? '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function routes(url: URL, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): void {
  switch (url.pathname) {
    case '/download': {
      const total = Number(url.searchParams.get('n') ?? '0');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    case '/sse': {
      const n = Number(url.searchParams.get('n') ?? '3');
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      const timer = setInterval(() => {
        res.write(`data: event-${i}\n\n`);
        if (++i >= n) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    case '/slow': {
      const timer = setTimeout(() => res.writeHead(200).end('slow'), Number(url.searchParams.get('ms') ?? '1000'));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    default: {
      const text = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: body?.toString('utf8') ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    }
  }
}
