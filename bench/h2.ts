// s7: 64 concurrent streams on one HTTP/2 connection (node:http2), direct to an upstream that speaks
// HTTP/2 and through keyway. keyway must offer h2 in ALPN on the intercepted leg for this to mean
// anything: when it does not, s7 reports "n/a (keyway did not negotiate h2)" and measures nothing.
// squid has no HTTP/2 on its bumped leg, so s7 is keyway against direct only.
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { type ClientHttp2Session, connect as h2connect, constants, createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { benchLookup, type PerRoute, type Tally } from './clients.ts';
import { latencyFigures, type LatencyFigures } from './report.ts';
import { rotate, type LatencyResult, type Plan } from './scenarios.ts';
import { parallel, sequential, summarise, type Bounds } from './stats.ts';
import { benchLeaf, VIA_HEADER } from './upstream.ts';

const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, note: 'small response over HTTP/2 for the keyway benchmark', n: 42 }));
const STREAM_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface H2UpstreamCounts {
  requests: number;
  /** Requests that arrived over HTTP/2 (the rest came over HTTP/1.1, which it also serves). */
  overH2: number;
  withoutCredential: number;
  viaKeyway: number;
  withoutCredentialViaKeyway: number;
}

export interface H2Upstream {
  port: number;
  counts: H2UpstreamCounts;
  close(): Promise<void>;
}

/** An HTTPS upstream for *.bench.test that offers h2 (and HTTP/1.1): /small, with the bench credential. */
export async function startH2Upstream(secret: string): Promise<H2Upstream> {
  const expected = `Bearer ${secret}`;
  const counts: H2UpstreamCounts = { requests: 0, overH2: 0, withoutCredential: 0, viaKeyway: 0, withoutCredentialViaKeyway: 0 };
  const { cert, key } = benchLeaf();
  const server: Http2SecureServer = createSecureServer({ cert, key, allowHTTP1: true, settings: { maxConcurrentStreams: 256 } }, (req, res) => {
    counts.requests++;
    if (req.httpVersionMajor === 2) counts.overH2++;
    const via = req.headers[VIA_HEADER] === 'keyway';
    if (via) counts.viaKeyway++;
    req.resume();
    if (req.headers.authorization !== expected) {
      counts.withoutCredential++;
      if (via) counts.withoutCredentialViaKeyway++;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":"unauthorized"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(SMALL_BODY.length) });
    res.end(SMALL_BODY);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    counts,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One HTTP/2 connection, or why there is none (the protocol the proxy chose instead). */
export type H2Open = { session: ClientHttp2Session } | { refused: string };

export interface H2Route {
  name: 'direct' | 'keyway';
  open(): Promise<H2Open>;
  headers(): Record<string, string>;
}

export function directH2(host: string, port: number, testCa: string, secret: string): H2Route {
  return {
    name: 'direct',
    open: async () => {
      const session = h2connect(`https://${host}:${port}`, { ca: testCa, lookup: benchLookup });
      await settle(session, 'connect');
      return { session };
    },
    headers: () => ({ authorization: `Bearer ${secret}` }),
  };
}

/** Through keyway: CONNECT, then TLS offering h2 and http/1.1; HTTP/2 only if keyway chooses h2. */
export function keywayH2(proxyUrl: string, host: string, port: number, cas: readonly string[]): H2Route {
  const proxy = new URL(proxyUrl);
  return {
    name: 'keyway',
    open: async () => {
      const tunnel = await connectTunnel(proxy, `${host}:${port}`);
      const tls: TLSSocket = tlsConnect({ socket: tunnel, servername: host, ca: [...cas], ALPNProtocols: ['h2', 'http/1.1'] });
      await settle(tls, 'secureConnect');
      if (tls.alpnProtocol !== 'h2') {
        tls.destroy();
        return { refused: tls.alpnProtocol || 'no ALPN' };
      }
      const session = h2connect(`https://${host}:${port}`, { createConnection: () => tls });
      await settle(session, 'connect');
      return { session };
    },
    // No credential: keyway must add it. The marker lets the upstream count keyway's streams.
    headers: () => ({ [VIA_HEADER]: 'keyway' }),
  };
}

function connectTunnel(proxy: URL, target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: proxy.hostname, port: Number(proxy.port), method: 'CONNECT', path: target, headers: { host: target } });
    req.setTimeout(CONNECT_TIMEOUT_MS, () => req.destroy(new Error(`CONNECT ${target}: no answer in ${CONNECT_TIMEOUT_MS} ms`)));
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      reject(new Error(`CONNECT ${target}: status ${res.statusCode}`));
    });
    req.once('error', reject);
    req.end();
  });
}

/** Waits for `event`, or fails on error or after CONNECT_TIMEOUT_MS. */
async function settle(emitter: NodeJS.EventEmitter, event: string): Promise<void> {
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  await once(emitter, event, { signal });
}

/** One GET /small as a stream of `session`; resolves when the body is read. */
function getSmall(session: ClientHttp2Session, host: string, headers: Record<string, string>, tally: Tally): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ':path': '/small', ':authority': host, ...headers });
    stream.setTimeout(STREAM_TIMEOUT_MS, () => stream.close(constants.NGHTTP2_CANCEL));
    let status = 0;
    let bytes = 0;
    stream.once('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.once('end', () => {
      if (status !== 200) {
        tally.badStatus++;
        tally.first ??= `s7 /small over HTTP/2: status ${status}`;
      } else if (bytes !== SMALL_BODY.length) {
        tally.badBody++;
        tally.first ??= `s7 /small over HTTP/2: got ${bytes} bytes, expected ${SMALL_BODY.length}`;
      }
      resolve();
    });
    stream.once('error', reject);
    stream.once('close', () => (stream.rstCode ? reject(new Error(`s7 stream reset (code ${stream.rstCode})`)) : undefined));
  });
}

/** s7 on one route: a warm-up, then `streams` concurrent streams on the one connection, bounded. */
export async function s7Streams(route: H2Route, host: string, plan: Plan['s7'], warmup: Bounds, bounds: Bounds, tally: Tally): Promise<LatencyResult | string> {
  const opened = await route.open();
  if ('refused' in opened) return opened.refused;
  const { session } = opened;
  try {
    const one = () => getSmall(session, host, route.headers(), tally);
    await sequential({ maxCount: 1, maxMs: warmup.maxMs }, one);
    await parallel(plan.streams, warmup, one);
    const samples: number[] = [];
    const loop = await parallel(plan.streams, bounds, async () => {
      const t0 = performance.now();
      await one();
      samples.push(performance.now() - t0);
    });
    return { requests: loop.count, seconds: loop.ms / 1000, rps: loop.count / (loop.ms / 1000), latencyMs: summarise(samples) };
  } finally {
    session.close();
    session.destroy();
  }
}

export interface H2Figures {
  /** False when keyway did not negotiate h2: nothing was measured. */
  ran: boolean;
  note: string;
  rounds: Array<PerRoute<LatencyResult>>;
  figures?: LatencyFigures | undefined;
  /** keyway ÷ direct, req/s (NaN when not run). */
  ratio: number;
}

/** s7 for both routes, round-robin; keyway goes first in round one, so a refusal costs no direct run. */
export async function s7Rounds(keyway: H2Route, direct: H2Route, count: number, run: (route: H2Route) => Promise<LatencyResult | string>): Promise<H2Figures> {
  const out: Array<PerRoute<LatencyResult>> = [];
  for (let i = 0; i < count; i++) {
    const round: Partial<Record<H2Route['name'], LatencyResult>> = {};
    for (const route of rotate([keyway, direct], i)) {
      const result = await run(route);
      if (typeof result === 'string') return { ran: false, note: `n/a (keyway did not negotiate h2; it chose ${result})`, rounds: [], ratio: Number.NaN };
      round[route.name] = result;
    }
    out.push(round as PerRoute<LatencyResult>);
  }
  const figures = latencyFigures(out);
  return { ran: true, note: `keyway ÷ direct: ${figures.ratio.toFixed(2)}x req/s`, rounds: out, figures, ratio: figures.ratio };
}
