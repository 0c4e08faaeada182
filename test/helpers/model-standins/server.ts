// The HTTPS server every model stand-in runs on: a real TLS listener whose certificate is issued by
// the committed test CA for whatever name the client asks for (SNI), so a client (or keyway, through
// `proxy.upstream_ca`) that trusts that CA and nothing else reaches it by the vendor's own host name
// mapped to loopback. It keeps every request it was sent (host, path, headers, body), so a test can
// say what the vendor would have seen; the vendor-specific parts are handlers (anthropic.ts, …).
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { mintTestLeaf } from '../test-leaf.ts';

export interface StandinRequest {
  /** The name the client asked for: the Host header (what keyway forwards), else the TLS server name. */
  host: string;
  method: string;
  /** The path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON, when it is JSON; undefined otherwise. */
  json: unknown;
}

/** A handler answers the requests it knows and returns false for the rest (the next one is asked). */
export type StandinHandler = (req: StandinRequest, res: ServerResponse) => boolean | Promise<boolean>;

/**
 * A WebSocket route: for an upgrade it knows, refuse it with an HTTP answer (a bad credential) or
 * accept it and talk on the socket; undefined for the rest.
 */
export type StandinWsHandler = (req: StandinRequest) => { refuse: { status: number; body: unknown } } | { accept: (socket: WebSocket) => void } | undefined;

export interface StandinServer {
  /** The address and port it listens on, for `proxy.hosts` and for clients dialling it directly. */
  address: string;
  port: number;
  /** `https://ADDRESS:PORT`, for a client that trusts the test CA and dials it directly. */
  origin: string;
  /** Every request it was sent, in order, refused ones too. */
  seen: StandinRequest[];
  close(): Promise<void>;
}

export interface StandinServerOptions {
  /** 127.0.0.1 and a free port unless given: a contained agent reaches TLS on 443 only, so tests
   * that run one listen on port 443 of a loopback address of their own (127.A.B.C). */
  listen?: { host: string; port: number };
  handlers: StandinHandler[];
  websocketHandlers?: StandinWsHandler[];
  /** Most requests a test sends are small; a body past this is answered 413 and not kept. */
  maxBody?: number;
}

/** A certificate per server name, minted once: signing a leaf takes a few milliseconds. */
const contexts = new Map<string, SecureContext>();
function contextFor(name: string): SecureContext {
  let context = contexts.get(name);
  if (!context) {
    const leaf = mintTestLeaf([name]);
    context = createSecureContext({ cert: leaf.cert, key: leaf.key });
    contexts.set(name, context);
  }
  return context;
}

export async function startStandinServer(options: StandinServerOptions): Promise<StandinServer> {
  const seen: StandinRequest[] = [];
  const maxBody = options.maxBody ?? 8 * 1024 * 1024;
  const fallback = mintTestLeaf(['localhost']);
  const server: Server = createServer({
    cert: fallback.cert,
    key: fallback.key,
    SNICallback: (name, done) => done(null, contextFor(name.toLowerCase())),
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBody) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > maxBody) return void res.writeHead(413).end();
      const url = new URL(req.url ?? '/', 'https://standin');
      const body = Buffer.concat(chunks);
      const tlsName = (req.socket as { servername?: string }).servername;
      const record: StandinRequest = {
        host: (req.headers.host ?? tlsName ?? '').replace(/:\d+$/, '').toLowerCase(),
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        json: parseJson(body, req.headers['content-type']),
      };
      seen.push(record);
      dispatch(options.handlers, record, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`stand-in failed: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://standin');
    const tlsName = (req.socket as { servername?: string }).servername;
    const record: StandinRequest = {
      host: (req.headers.host ?? tlsName ?? '').replace(/:\d+$/, '').toLowerCase(),
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.alloc(0),
      json: undefined,
    };
    seen.push(record);
    for (const handler of options.websocketHandlers ?? []) {
      const verdict = handler(record);
      if (verdict === undefined) continue;
      if ('refuse' in verdict) return void refuseUpgrade(socket, verdict.refuse.status, verdict.refuse.body);
      return void wss.handleUpgrade(req, socket, head, (ws) => verdict.accept(ws));
    }
    refuseUpgrade(socket, 404, { error: { message: `no stand-in WebSocket route for ${record.host}${record.path}` } });
  });
  server.listen(options.listen?.port ?? 0, options.listen?.host ?? '127.0.0.1');
  await once(server, 'listening');
  const { address, port } = server.address() as AddressInfo;
  return {
    address,
    port,
    origin: `https://${address}:${port}`,
    seen,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function refuseUpgrade(socket: Duplex, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Refused'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
}

async function dispatch(handlers: StandinHandler[], req: StandinRequest, res: ServerResponse): Promise<void> {
  for (const handler of handlers) if (await handler(req, res)) return;
  sendJson(res, 404, { error: { message: `no stand-in route for ${req.method} ${req.host}${req.path}` } });
}

function parseJson(body: Buffer, contentType: string | undefined): unknown {
  if (body.length === 0) return undefined;
  if (contentType !== undefined && !/json/i.test(contentType)) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): true {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
  return true;
}

/** One server-sent event; `event` omitted for the streams that carry only `data:` lines. */
export function sseEvent(data: unknown, event?: string): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;
}

export function startSse(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', ...headers });
}

/** The token a request presents as `Authorization: Bearer TOKEN`, if any. */
export function bearerOf(req: StandinRequest): string | undefined {
  const value = req.headers.authorization;
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1];
}

/** A header's one value (the last of repeated ones, as most servers read them). */
export function headerOf(req: StandinRequest, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.at(-1) : value;
}
