// The timed scenarios. Each runs one route (direct, keyway, or a peer) with a fresh dispatcher, after
// a warm-up on that dispatcher (`Context.warmupMs`, 1 s by default), and every loop is bounded in
// count and in time.
import type { Dispatcher } from 'undici';
import { getBody, upload, type PerRoute, type Route, type RouteName, type Tally } from './clients.ts';
import { MiB, parallel, sequential, summarise, type Bounds, type LatencySummary } from './stats.ts';

export const MAIN_HOST = 'api.bench.test';
export const newHost = (i: number): string => `h${i}.bench.test`;
export const warmHost = (i: number): string => `w${i}.bench.test`;
/**
 * The s6 host, covered only by the oauth2 grant. Not under bench.test: the bearer grant covers
 * *.bench.test, and a second grant on one of those names would make every request grant_ambiguous.
 */
export const OAUTH_HOST = 'oauth.benchauth.test';
/**
 * The s8/s9 host, covered only by the aws_sigv4 grant (not under bench.test, for the same reason).
 * Not an amazonaws.com name either, so the grant sets its region and service itself.
 */
export const AWS_HOST = 's3.bench-aws.test';

export interface Plan {
  rounds: number;
  /** Warm-up of each route before each timed run (the user's first requests matter: 1 s by default). */
  warmupMs: number;
  s1: { bounds: Bounds };
  s2: { connections: number; bounds: Bounds };
  s3: { concurrency: number; bounds: Bounds };
  s4: { concurrency: number; bounds: Bounds };
  s5: { hosts: number; warmupHosts: number; maxMs: number };
  /** s2's load on the oauth2 grant, whose access token lives `tokenLifetimeS` and is refreshed `refreshSkewS` early. */
  s6: { connections: number; warmupPerConnection: number; bounds: Bounds; tokenLifetimeS: number; refreshSkewS: number };
  /** Concurrent streams on one HTTP/2 connection. */
  s7: { streams: number; bounds: Bounds };
  /** s2's load through keyway on the aws_sigv4 grant, paired round by round with the same load on the bearer grant. */
  s8: Plan['s2'];
  /** s4's uploads through keyway on the aws_sigv4 grant with a hex x-amz-content-sha256 (held and hashed), paired with s4 on the bearer grant. */
  s9: Plan['s4'];
  /** s2's load as JSON-RPC tools/call POSTs through keyway, to an MCP endpoint and to a plain path, paired. */
  s10: Plan['s2'];
}

export const FULL_PLAN: Plan = {
  rounds: 3,
  // keyway runs without Maglev (src/cli/proxy-runtime.ts), so its request path reaches optimised code
  // only after ~3000 calls: 1 s of warm-up shows what a user's first thousand requests see, and
  // `--warmup=10` the steady state.
  warmupMs: 1000,
  s1: { bounds: { maxCount: 2000, maxMs: 4000 } },
  s2: { connections: 64, bounds: { maxCount: 20_000, maxMs: 4000 } },
  s3: { concurrency: 8, bounds: { maxCount: 200, maxMs: 4000 } },
  s4: { concurrency: 8, bounds: { maxCount: 200, maxMs: 4000 } },
  s5: { hosts: 200, warmupHosts: 5, maxMs: 40_000 },
  s6: { connections: 64, warmupPerConnection: 2, bounds: { maxCount: 500_000, maxMs: 10_000 }, tokenLifetimeS: 3, refreshSkewS: 1 },
  s7: { streams: 64, bounds: { maxCount: 20_000, maxMs: 4000 } },
  s8: { connections: 64, bounds: { maxCount: 20_000, maxMs: 4000 } },
  s9: { concurrency: 8, bounds: { maxCount: 200, maxMs: 4000 } },
  s10: { connections: 64, bounds: { maxCount: 20_000, maxMs: 4000 } },
};

export const QUICK_PLAN: Plan = {
  rounds: 1,
  warmupMs: 200,
  s1: { bounds: { maxCount: 300, maxMs: 1500 } },
  s2: { connections: 64, bounds: { maxCount: 3000, maxMs: 1500 } },
  s3: { concurrency: 8, bounds: { maxCount: 24, maxMs: 1500 } },
  s4: { concurrency: 8, bounds: { maxCount: 24, maxMs: 1500 } },
  s5: { hosts: 20, warmupHosts: 2, maxMs: 10_000 },
  s6: { connections: 64, warmupPerConnection: 2, bounds: { maxCount: 150_000, maxMs: 3000 }, tokenLifetimeS: 3, refreshSkewS: 1 },
  s7: { streams: 64, bounds: { maxCount: 3000, maxMs: 1500 } },
  s8: { connections: 64, bounds: { maxCount: 3000, maxMs: 1500 } },
  s9: { concurrency: 8, bounds: { maxCount: 24, maxMs: 1500 } },
  s10: { connections: 64, bounds: { maxCount: 3000, maxMs: 1500 } },
};

/** Warm-ups are bounded by time (Plan.warmupMs); this only caps their count. */
const WARMUP_MAX_COUNT = 1_000_000;

export interface Context {
  upstreamPort: number;
  tally: Tally;
  /** performance.now() after which no loop starts another request. */
  deadline: number;
  warmupMs: number;
}

export interface LatencyResult {
  requests: number;
  seconds: number;
  rps: number;
  latencyMs: LatencySummary;
  /** CPU time the route's proxy spent during the timed loop (s1, s2; none for direct). */
  cpuMs?: number | undefined;
}

export interface RefreshLoadResult extends LatencyResult {
  /** Responses other than 200 (or with a wrong body) during the measured window. */
  failures: number;
  /** The first of them, for the report. */
  firstFailure: string | undefined;
  /** Successful refreshes at the token endpoint during the measured window. */
  tokenRefreshes: number;
  /** Every call to the token endpoint during the window, refused ones included. */
  tokenCalls: number;
  /** Requests, failures and token endpoint calls during the warm-up (the grant starts with an expired access token). */
  warmup: { requests: number; failures: number; tokenCalls: number };
}

/** What s6 reads from the bench token endpoint. */
export interface TokenCounter {
  calls(): number;
  refreshes(): number;
}

export interface ThroughputResult {
  transfers: number;
  seconds: number;
  mibPerSecond: number;
  /** CPU time the route's proxy spent during the timed loop (s4, s9; none for direct). */
  cpuMs?: number | undefined;
}

export interface NewHostResult {
  hosts: number;
  /** Mean time for the first request to a new host (connect, TLS, request, response). */
  msPerHost: number;
  latencyMs: LatencySummary;
}

/** s4's and s9's upload body (s9's client sends its SHA-256 as x-amz-content-sha256). */
export const UPLOAD_PAYLOAD = Buffer.alloc(MiB, 0x62);

const origin = (ctx: Context, host: string) => `https://${host}:${ctx.upstreamPort}`;

/** A scenario's bounds, further cut by what is left of the whole run's time budget. */
function within(ctx: Context, bounds: Bounds): Bounds {
  return { maxCount: bounds.maxCount, maxMs: Math.max(0, Math.min(bounds.maxMs, ctx.deadline - performance.now())) };
}

const warmup = (ctx: Context): Bounds => within(ctx, { maxCount: WARMUP_MAX_COUNT, maxMs: ctx.warmupMs });

async function withDispatcher<T>(route: Route, connections: number | undefined, fn: (d: Dispatcher) => Promise<T>): Promise<T> {
  const dispatcher = route.dispatcher(connections);
  try {
    return await fn(dispatcher);
  } finally {
    await dispatcher.close().catch(() => dispatcher.destroy());
  }
}

/** s1: small GETs one after another on one kept-alive connection. */
export function s1Sequential(route: Route, ctx: Context, plan: Plan['s1']): Promise<LatencyResult> {
  return withDispatcher(route, 1, async (d) => {
    const url = `${origin(ctx, MAIN_HOST)}/small`;
    await sequential(warmup(ctx), async () => void (await getBody(route, d, url, ctx.tally)));
    const samples: number[] = [];
    const cpu0 = route.cpuMs?.();
    const loop = await sequential(within(ctx, plan.bounds), async () => {
      const t0 = performance.now();
      await getBody(route, d, url, ctx.tally);
      samples.push(performance.now() - t0);
    });
    const cpuMs = cpu0 === undefined ? undefined : (route.cpuMs?.() ?? Number.NaN) - cpu0;
    return { requests: loop.count, seconds: loop.ms / 1000, rps: loop.count / (loop.ms / 1000), latencyMs: summarise(samples), cpuMs };
  });
}

/** What each request of a load sends: s2's small GET by default, s10's JSON-RPC POST. */
export interface LoadRequest {
  path: string;
  send(dispatcher: Dispatcher, url: string, i: number): Promise<void>;
}

const smallGet = (route: Route, ctx: Context): LoadRequest => ({
  path: '/small',
  send: async (d, url) => void (await getBody(route, d, url, ctx.tally)),
});

/**
 * s2: small GETs from `connections` concurrent workers, one kept-alive connection each. The proxy's
 * CPU time is read around the timed loop (not the warm-up), for CPU per request. s8 runs it on the
 * aws_sigv4 grant's host, s10 with JSON-RPC POSTs.
 */
export function s2Parallel(route: Route, ctx: Context, plan: Plan['s2'], host = MAIN_HOST, load = smallGet(route, ctx)): Promise<LatencyResult> {
  return withDispatcher(route, plan.connections, async (d) => {
    const url = `${origin(ctx, host)}${load.path}`;
    await parallel(plan.connections, warmup(ctx), (i) => load.send(d, url, i));
    return timedLoad(route, d, url, load, plan.connections, within(ctx, plan.bounds));
  });
}

/** `load` on `connections` at once through `d` within `bounds`: its rate, latency and the proxy's CPU meanwhile (s2's measured part; s2m's kept turns). */
export async function timedLoad(route: Route, d: Dispatcher, url: string, load: LoadRequest, connections: number, bounds: Bounds): Promise<LatencyResult> {
  const samples: number[] = [];
  const cpu0 = route.cpuMs?.();
  const loop = await parallel(connections, bounds, async (i) => {
    const t0 = performance.now();
    await load.send(d, url, i);
    samples.push(performance.now() - t0);
  });
  const cpuMs = cpu0 === undefined ? undefined : (route.cpuMs?.() ?? Number.NaN) - cpu0;
  return { requests: loop.count, seconds: loop.ms / 1000, rps: loop.count / (loop.ms / 1000), latencyMs: summarise(samples), cpuMs };
}

/**
 * s6: s2's load (small GETs on `connections` kept-alive connections) through keyway to the host of
 * the oauth2 grant, whose access token expires every few seconds, so keyway refreshes it under load.
 * Responses are tallied apart: a non-200 here is the result being measured, not a bench bug.
 */
export function s6RefreshUnderLoad(route: Route, ctx: Context, plan: Plan['s6'], tokens: TokenCounter): Promise<RefreshLoadResult> {
  const warmTally: Tally = { badStatus: 0, badBody: 0 };
  const tally: Tally = { badStatus: 0, badBody: 0 };
  return withDispatcher(route, plan.connections, async (d) => {
    const url = `${origin(ctx, OAUTH_HOST)}/small`;
    const warm = plan.connections * plan.warmupPerConnection;
    const callsBefore = tokens.calls();
    const warmLoop = await parallel(plan.connections, within(ctx, { maxCount: warm, maxMs: 5000 }), async () => void (await getBody(route, d, url, warmTally)));
    const warmup = { requests: warmLoop.count, failures: warmTally.badStatus + warmTally.badBody, tokenCalls: tokens.calls() - callsBefore };
    const samples: number[] = [];
    const calls0 = tokens.calls();
    const refreshes0 = tokens.refreshes();
    const loop = await parallel(plan.connections, within(ctx, plan.bounds), async () => {
      const t0 = performance.now();
      await getBody(route, d, url, tally);
      samples.push(performance.now() - t0);
    });
    return {
      requests: loop.count,
      seconds: loop.ms / 1000,
      rps: loop.count / (loop.ms / 1000),
      latencyMs: summarise(samples),
      failures: tally.badStatus + tally.badBody,
      firstFailure: tally.first ?? warmTally.first,
      tokenCalls: tokens.calls() - calls0,
      tokenRefreshes: tokens.refreshes() - refreshes0,
      warmup,
    };
  });
}

/** s3: 1 MiB downloads, `concurrency` at a time. */
export function s3Download(route: Route, ctx: Context, plan: Plan['s3']): Promise<ThroughputResult> {
  return withDispatcher(route, plan.concurrency, async (d) => {
    const url = `${origin(ctx, MAIN_HOST)}/download?n=${MiB}`;
    const one = async () => void (await getBody(route, d, url, ctx.tally, MiB));
    await parallel(plan.concurrency, warmup(ctx), one);
    const loop = await parallel(plan.concurrency, within(ctx, plan.bounds), one);
    return { transfers: loop.count, seconds: loop.ms / 1000, mibPerSecond: loop.count / (loop.ms / 1000) };
  });
}

/** s4: 1 MiB uploads, `concurrency` at a time (s9: on the aws_sigv4 grant's host), with the proxy's CPU time around the timed loop. */
export function s4Upload(route: Route, ctx: Context, plan: Plan['s4'], host = MAIN_HOST): Promise<ThroughputResult> {
  return withDispatcher(route, plan.concurrency, async (d) => {
    const url = `${origin(ctx, host)}/upload`;
    const one = async () => void (await upload(route, d, url, UPLOAD_PAYLOAD, ctx.tally));
    await parallel(plan.concurrency, warmup(ctx), one);
    const cpu0 = route.cpuMs?.();
    const loop = await parallel(plan.concurrency, within(ctx, plan.bounds), one);
    const cpuMs = cpu0 === undefined ? undefined : (route.cpuMs?.() ?? Number.NaN) - cpu0;
    return { transfers: loop.count, seconds: loop.ms / 1000, mibPerSecond: loop.count / (loop.ms / 1000), cpuMs };
  });
}

/**
 * s5: the first request to each of `hosts` names never seen before (h0.bench.test, …), one after
 * another. The routes go host by host in turn (direct h0, keyway h0, squid h0, direct h1, …; the
 * first route moves on by one each host) so that any drift in the machine's load touches all alike.
 * Each route keeps one dispatcher for all hosts, so each new name costs a new connection and TLS
 * handshake (and, through a proxy, a CONNECT, a minted leaf and a new upstream connection).
 */
export async function s5NewHosts(routes: readonly Route[], ctx: Context, plan: Plan['s5']): Promise<PerRoute<NewHostResult>> {
  const dispatchers = new Map(routes.map((r) => [r, r.dispatcher()]));
  const samples = new Map<Route, number[]>(routes.map((r) => [r, []]));
  try {
    const first = async (route: Route, host: string) =>
      void (await getBody(route, dispatchers.get(route) as Dispatcher, `${origin(ctx, host)}/small`, ctx.tally));
    await sequential(within(ctx, { maxCount: plan.warmupHosts, maxMs: 10_000 }), async (i) => {
      for (const route of rotate(routes, i)) await first(route, warmHost(i));
    });
    await sequential(within(ctx, { maxCount: plan.hosts, maxMs: plan.maxMs }), async (i) => {
      for (const route of rotate(routes, i)) {
        const t0 = performance.now();
        await first(route, newHost(i));
        samples.get(route)?.push(performance.now() - t0);
      }
    });
    const out: Partial<Record<RouteName, NewHostResult>> = {};
    for (const route of routes) {
      const latencyMs = summarise(samples.get(route) ?? []);
      out[route.name] = { hosts: latencyMs.count, msPerHost: latencyMs.mean, latencyMs };
    }
    return out as PerRoute<NewHostResult>;
  } finally {
    await Promise.all([...dispatchers.values()].map((d) => d.close().catch(() => d.destroy())));
  }
}

/** The routes starting at index `by` (mod length): round-robin, so no route always goes first. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Runs a scenario for every route, `count` times, round-robin: each round starts one route later. */
export async function rounds<T>(routes: readonly Route[], count: number, run: (route: Route) => Promise<T>): Promise<Array<PerRoute<T>>> {
  const out: Array<PerRoute<T>> = [];
  for (let i = 0; i < count; i++) {
    const round: Partial<Record<RouteName, T>> = {};
    for (const route of rotate(routes, i)) round[route.name] = await run(route);
    out.push(round as PerRoute<T>);
  }
  return out;
}
