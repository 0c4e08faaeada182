// The one client library for every route: undici. Direct: an Agent that trusts the test CA, maps
// *.bench.test to 127.0.0.1 and sends the credential itself. Through a proxy (keyway, or a peer it
// is compared with: squid, the bare forwarder): a ProxyAgent that trusts that proxy's CA (and the
// test CA) and sends no credential; the proxy injects it.
import type { LookupFunction } from 'node:net';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { VIA_HEADER } from './upstream.ts';

/** direct, keyway, and the peers measured in the same run: squid (ssl-bump) and the bare forwarder (the floor). */
export type RouteName = 'direct' | 'keyway' | 'squid' | 'floor';
export type ProxyName = Exclude<RouteName, 'direct'>;
/** One figure per route: direct and keyway always, the peers when they ran. */
export type PerRoute<T> = { direct: T; keyway: T; squid?: T | undefined; floor?: T | undefined };

export interface Route {
  name: RouteName;
  /** CPU time the proxy process(es) of this route have used so far, in ms (none for direct). */
  cpuMs?: (() => number) | undefined;
  /** A fresh dispatcher with at most `connections` connections per origin. */
  dispatcher(connections?: number): Dispatcher;
  /** Fresh headers for one request (ProxyAgent writes into the object it is given). */
  headers(): Record<string, string>;
}

/** Requests that did not come back as expected; any of these makes the run exit non-zero. */
export interface Tally {
  badStatus: number;
  badBody: number;
  first?: string;
}

export const BENCH_SUFFIX = '.bench.test';
const TIMEOUTS = { headersTimeout: 30_000, bodyTimeout: 30_000, connectTimeout: 10_000 } as const;

/** *.bench.test -> 127.0.0.1, anything else is not found: the benchmark never leaves loopback. */
export const benchLookup: LookupFunction = (hostname, options, callback) => {
  if (!hostname.endsWith(BENCH_SUFFIX)) {
    const err = Object.assign(new Error(`bench lookup: ${hostname} is not a bench host`), { code: 'ENOTFOUND' });
    callback(err as NodeJS.ErrnoException, '', 0);
    return;
  }
  if ((options as { all?: boolean }).all) {
    (callback as unknown as (err: null, all: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  } else {
    callback(null, '127.0.0.1', 4);
  }
};

export function directRoute(testCa: string, secret: string): Route {
  return {
    name: 'direct',
    dispatcher: (connections) =>
      new Agent({
        ...TIMEOUTS,
        ...(connections === undefined ? {} : { connections }),
        keepAliveTimeout: 30_000,
        connect: { ca: testCa, lookup: benchLookup, timeout: TIMEOUTS.connectTimeout },
      }),
    headers: () => ({ authorization: `Bearer ${secret}` }),
  };
}

export function keywayRoute(proxyUrl: string, keywayCa: string, testCa: string, cpuMs?: () => number): Route {
  return proxyRoute('keyway', proxyUrl, keywayCa, testCa, cpuMs);
}

/** A route through an intercepting proxy whose CA is `proxyCa`; the marker header names the route. */
export function proxyRoute(name: ProxyName, proxyUrl: string, proxyCa: string, testCa: string, cpuMs?: () => number): Route {
  return {
    name,
    cpuMs,
    dispatcher: (connections) =>
      new ProxyAgent({
        uri: proxyUrl,
        ...TIMEOUTS,
        ...(connections === undefined ? {} : { connections }),
        keepAliveTimeout: 30_000,
        // HTTP/1.1 inside the tunnel, as squid (ssl-bump offers no h2) and the direct route speak:
        // undici asks for h2 by default, and keyway now offers it. s7 measures HTTP/2 on its own.
        allowH2: false,
        requestTls: { ca: [proxyCa, testCa], timeout: TIMEOUTS.connectTimeout },
      }),
    // No Authorization: the proxy must add it. The marker lets the upstream count each proxy's requests.
    headers: () => ({ [VIA_HEADER]: name }),
  };
}

function noteBad(tally: Tally, what: string): void {
  tally.first ??= what;
}

async function checkStatus(res: Dispatcher.ResponseData, tally: Tally, url: string): Promise<boolean> {
  if (res.statusCode === 200) return true;
  tally.badStatus++;
  const code = res.headers['x-keyway-error'];
  noteBad(tally, `${url}: status ${res.statusCode}${code ? ` (${String(code)})` : ''}`);
  await res.body.dump();
  return false;
}

/** GET url and read the whole body; returns the byte count (0 on a bad status). */
export async function getBody(route: Route, dispatcher: Dispatcher, url: string, tally: Tally, expectBytes?: number): Promise<number> {
  const res = await request(url, { dispatcher, headers: route.headers() });
  if (!(await checkStatus(res, tally, url))) return 0;
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) bytes += chunk.length;
  if (expectBytes !== undefined && bytes !== expectBytes) {
    tally.badBody++;
    noteBad(tally, `${url}: got ${bytes} bytes, expected ${expectBytes}`);
  }
  return bytes;
}

/** POST a body and check that the upstream counted all of it. */
export async function upload(route: Route, dispatcher: Dispatcher, url: string, payload: Buffer, tally: Tally): Promise<number> {
  const res = await request(url, {
    dispatcher,
    method: 'POST',
    headers: { ...route.headers(), 'content-type': 'application/octet-stream' },
    body: payload,
  });
  if (!(await checkStatus(res, tally, url))) return 0;
  const answer = (await res.body.json()) as { bytes?: number };
  if (answer.bytes !== payload.length) {
    tally.badBody++;
    noteBad(tally, `${url}: upstream counted ${String(answer.bytes)} bytes, sent ${payload.length}`);
  }
  return payload.length;
}

/** POST a JSON-RPC request and check the answer carries its id (s10). */
export async function postRpc(route: Route, dispatcher: Dispatcher, url: string, id: number, body: string, tally: Tally): Promise<void> {
  const res = await request(url, {
    dispatcher,
    method: 'POST',
    headers: { ...route.headers(), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body,
  });
  if (!(await checkStatus(res, tally, url))) return;
  const answer = (await res.body.json()) as { id?: unknown; result?: unknown };
  if (answer.id !== id || answer.result === undefined) {
    tally.badBody++;
    noteBad(tally, `${url}: the answer to id ${id} was ${JSON.stringify(answer).slice(0, 120)}`);
  }
}
