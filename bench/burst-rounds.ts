// Short rounds: what an agent's burst sees. A proxy started afresh, then, with no warm-up, s1's
// sequential GETs and s2's parallel ones, each only a few thousand requests; then, in the same
// process, s2's long round (the steady state the main bench reads after its warm-ups). Issue 92:
// a peer harness with short rounds read keyway's CPU per request at 1.9x squid's where the main
// bench, warmed for a second and timed for four, read 1.3x; both are reported from here on.
//
// Every loop is bounded in count and time (Plan bounds). The proxy is started by the caller, once
// per round, so that each round's first request meets a process that has served nothing.
import type { Route, Tally } from './clients.ts';
import type { MemoryReading } from './proc.ts';
import { type Context, type LatencyResult, s1Sequential, s2Parallel } from './scenarios.ts';
import { fixed, median, table } from './stats.ts';

export interface BurstPlan {
  /** Sequential GETs on one new connection, first thing after start. */
  s1Requests: number;
  /** Then GETs over s2Connections new connections at once. */
  s2Requests: number;
  s2Connections: number;
  /** Then, in the same process, s2's long round: this many milliseconds (or 200,000 requests). */
  longMs: number;
}

export const BURST_PLAN: BurstPlan = { s1Requests: 1000, s2Requests: 3000, s2Connections: 64, longMs: 4000 };
export const QUICK_BURST_PLAN: BurstPlan = { s1Requests: 200, s2Requests: 600, s2Connections: 64, longMs: 1000 };

/** A proxy just started for one round: its route (with a CPU reader), its memory, and how to stop it. */
export interface FreshProxy {
  route: Route;
  memory(): MemoryReading;
  /** Called around the burst (s1 and s2's first requests), e.g. to profile it (bench/burst.ts --cpu-prof). */
  aroundBurst?: { before(): Promise<void>; after(): Promise<void> } | undefined;
  /** Where its memory is, read after the long round (bench/burst.ts --spaces). */
  describeMemory?: (() => Promise<string>) | undefined;
  stop(): Promise<void>;
}

export interface BurstRound {
  s1: LatencyResult;
  s2: LatencyResult;
  /** s2's long round, right after the burst, in the same process. */
  long: LatencyResult;
  /** s1 again after the long round, on a new connection: a warm process's sequential requests. */
  s1After: LatencyResult;
  /** Resident memory after start, after the burst and after the long round (the main bench's "after s2" point), MiB. */
  rssStartMiB: number;
  rssBurstMiB: number;
  rssAfterMiB: number;
  memoryDetail?: string | undefined;
}

/** One round on a proxy that has served nothing yet; stops it after. */
export async function burstRound(proxy: FreshProxy, upstreamPort: number, tally: Tally, plan: BurstPlan): Promise<BurstRound> {
  try {
    const ctx: Context = { upstreamPort, tally, deadline: performance.now() + 120_000, warmupMs: 0 };
    const rssStartMiB = proxy.memory().rssMiB;
    await proxy.aroundBurst?.before();
    const s1 = await s1Sequential(proxy.route, ctx, { bounds: { maxCount: plan.s1Requests, maxMs: 30_000 } });
    const s2 = await s2Parallel(proxy.route, ctx, { connections: plan.s2Connections, bounds: { maxCount: plan.s2Requests, maxMs: 30_000 } });
    await proxy.aroundBurst?.after();
    const rssBurstMiB = proxy.memory().rssMiB;
    const long = await s2Parallel(proxy.route, ctx, { connections: plan.s2Connections, bounds: { maxCount: 200_000, maxMs: plan.longMs } });
    const rssAfterMiB = proxy.memory().rssMiB;
    const s1After = await s1Sequential(proxy.route, ctx, { bounds: { maxCount: plan.s1Requests, maxMs: 30_000 } });
    return { s1, s2, long, s1After, rssStartMiB, rssBurstMiB, rssAfterMiB, memoryDetail: await proxy.describeMemory?.() };
  } finally {
    await proxy.stop().catch(() => undefined);
  }
}

/** s1 straight to the upstream, on a fresh connection too: what the proxies' s1 is compared with. */
export async function directBurst(route: Route, upstreamPort: number, tally: Tally, plan: BurstPlan): Promise<LatencyResult> {
  const ctx: Context = { upstreamPort, tally, deadline: performance.now() + 60_000, warmupMs: 0 };
  return s1Sequential(route, ctx, { bounds: { maxCount: plan.s1Requests, maxMs: 30_000 } });
}

/** CPU per request in microseconds (NaN when the route has no CPU reader). */
export const cpuUs = (r: LatencyResult): number => ((r.cpuMs ?? Number.NaN) / r.requests) * 1000;

/** A proxy the series starts afresh for each of its rounds. */
export interface BurstSide {
  name: string;
  start(): Promise<FreshProxy>;
}

export interface BurstSeries {
  /** Each side's rounds, one per restart, in restart order. */
  rounds: Record<string, BurstRound[]>;
  /** s1's p50 straight to the upstream, per restart (ms). */
  directP50Ms: number[];
}

/**
 * `restarts` rounds of every side, each on a proxy started for it, the sides in an order that turns
 * each restart (so no side always meets the machine first), with s1 straight to the upstream first.
 */
export async function burstSeries(
  sides: readonly BurstSide[],
  restarts: number,
  upstream: { port: number; direct: Route },
  tally: Tally,
  plan: BurstPlan,
  onRound?: (restart: number, name: string, round: BurstRound) => void,
): Promise<BurstSeries> {
  const series: BurstSeries = { rounds: Object.fromEntries(sides.map((s) => [s.name, []])), directP50Ms: [] };
  for (let restart = 0; restart < restarts; restart++) {
    series.directP50Ms.push((await directBurst(upstream.direct, upstream.port, tally, plan)).latencyMs.p50);
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(i + restart) % sides.length] as BurstSide;
      const round = await burstRound(await side.start(), upstream.port, tally, plan);
      series.rounds[side.name]?.push(round);
      onRound?.(restart, side.name, round);
    }
  }
  return series;
}

/** One side's medians over a series. */
export interface BurstFigures {
  rounds: number;
  /** s1's first requests: p50 minus direct's, ms. */
  s1AddedP50Ms: number;
  /** s1 again after the long round, p50 minus direct's, ms. */
  s1AfterAddedP50Ms: number;
  s2CpuUsPerRequest: number;
  longCpuUsPerRequest: number;
  longRps: number;
  rssAfterMiB: number;
}

export function burstFigures(series: BurstSeries, name: string): BurstFigures {
  const list = series.rounds[name] ?? [];
  const direct = median(series.directP50Ms);
  return {
    rounds: list.length,
    s1AddedP50Ms: median(list.map((r) => r.s1.latencyMs.p50)) - direct,
    s1AfterAddedP50Ms: median(list.map((r) => r.s1After.latencyMs.p50)) - direct,
    s2CpuUsPerRequest: median(list.map((r) => cpuUs(r.s2))),
    longCpuUsPerRequest: median(list.map((r) => cpuUs(r.long))),
    longRps: median(list.map((r) => r.long.rps)),
    rssAfterMiB: median(list.map((r) => r.rssAfterMiB)),
  };
}

/** a ÷ b of a figure, round by round (the same restart), and their median and range. */
export function perRestartRatio(series: BurstSeries, a: string, b: string, pick: (r: BurstRound) => number): { median: number; min: number; max: number } {
  const mine = series.rounds[a] ?? [];
  const theirs = series.rounds[b] ?? [];
  const ratios = mine.map((r, i) => pick(r) / pick(theirs[i] as BurstRound)).filter(Number.isFinite);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** The series as a table: one row per side, medians with their range. */
export function burstTable(series: BurstSeries, names: readonly string[]): string {
  const direct = median(series.directP50Ms);
  const spread = (values: number[], digits: number) =>
    values.length === 0 ? 'n/a' : `${fixed(median(values), digits)} (${fixed(Math.min(...values), digits)}-${fixed(Math.max(...values), digits)})`;
  const rows = names.map((name) => {
    const list = series.rounds[name] ?? [];
    return [
      name,
      spread(
        list.map((r) => (r.s1.latencyMs.p50 - direct) * 1000),
        0,
      ),
      spread(list.map(cpuUsOf('s2')), 0),
      spread(list.map(cpuUsOf('long')), 0),
      spread(
        list.map((r) => r.long.rps),
        0,
      ),
      spread(
        list.map((r) => (r.s1After.latencyMs.p50 - direct) * 1000),
        0,
      ),
      spread(
        list.map((r) => r.rssAfterMiB),
        1,
      ),
    ];
  });
  return table(
    [
      'fresh start',
      's1 first requests: added p50 µs',
      's2 first requests: CPU µs/req',
      's2 long round: CPU µs/req',
      'long round req/s',
      's1 after: added p50 µs',
      'RSS after, MiB',
    ],
    rows,
  );
}

const cpuUsOf = (key: 's2' | 'long') => (r: BurstRound) => cpuUs(r[key]);
