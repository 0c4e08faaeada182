// s11, every core: s2's load (small GETs on kept-alive connections) through keyway with
// proxy.workers at 1 and at N, and through squid with 1 worker and N (its SMP mode, `workers N`),
// round-robin with direct in each round, so that drift in the machine's load falls on all alike.
// Prints req/s, CPU per request (each proxy's whole process tree: a primary and its workers, squid's
// master, kids and certificate helpers), added latency and RSS, and the slope from 1 to N workers.
//
// The client and the upstream run in the bench's own process: on a machine with few cores they
// take a core's share of their own, so the slope is what is left for the proxies, not the proxies'
// own ceiling. Compare the proxies with each other in the same run, not across machines.
import type { Route } from './clients.ts';
import type { MemoryReading } from './proc.ts';
import type { TargetLine } from './report-targets.ts';
import { type Context, type LatencyResult, type Plan, rotate, s2Parallel } from './scenarios.ts';
import { fixed, median, table } from './stats.ts';

/** One way through: a label for the table, the route the load takes, and its memory (none for direct). */
export interface ScalingRoute {
  readonly label: string;
  /** keyway or squid, or direct; with its worker count. */
  readonly proxy: 'direct' | 'keyway' | 'squid';
  readonly workers: number;
  readonly route: Route;
  readonly memory?: (() => MemoryReading) | undefined;
}

export interface ScalingRow {
  label: string;
  proxy: 'direct' | 'keyway' | 'squid';
  workers: number;
  rps: number;
  cpuMsPerRequest: number;
  p50: number;
  p99: number;
  rssMiB: number | undefined;
}

export interface ScalingFigures {
  workers: number;
  rows: ScalingRow[];
  /** req/s at N workers ÷ at 1, per proxy. */
  keywaySlope: number;
  squidSlope: number;
  /** keyway ÷ squid req/s, both at N workers. */
  keywayOverSquid: number;
  /** The same, CPU per request. */
  keywayCpuOverSquid: number;
}

export type ScalingRounds = Array<Record<string, LatencyResult>>;

export async function s11Scaling(routes: readonly ScalingRoute[], ctx: Context, plan: Plan['s2'], count: number): Promise<ScalingRounds> {
  const out: ScalingRounds = [];
  for (let i = 0; i < count; i++) {
    const round: Record<string, LatencyResult> = {};
    for (const r of rotate(routes, i)) round[r.label] = await s2Parallel(r.route, ctx, plan);
    out.push(round);
  }
  return out;
}

export function scalingFigures(routes: readonly ScalingRoute[], rounds: ScalingRounds, workers: number): ScalingFigures {
  const med = (label: string, pick: (r: LatencyResult) => number) =>
    median(
      rounds
        .map((r) => r[label])
        .filter((r) => r !== undefined)
        .map(pick),
    );
  const rows = routes.map((r): ScalingRow => {
    const rss = r.memory?.().rssMiB;
    return {
      label: r.label,
      proxy: r.proxy,
      workers: r.workers,
      rps: med(r.label, (x) => x.rps),
      cpuMsPerRequest: r.proxy === 'direct' ? Number.NaN : med(r.label, (x) => (x.cpuMs ?? Number.NaN) / x.requests),
      p50: med(r.label, (x) => x.latencyMs.p50),
      p99: med(r.label, (x) => x.latencyMs.p99),
      rssMiB: rss,
    };
  });
  const row = (proxy: string, n: number) => rows.find((r) => r.proxy === proxy && r.workers === n);
  const rps = (proxy: string, n: number) => row(proxy, n)?.rps ?? Number.NaN;
  return {
    workers,
    rows,
    keywaySlope: rps('keyway', workers) / rps('keyway', 1),
    squidSlope: rps('squid', workers) / rps('squid', 1),
    keywayOverSquid: rps('keyway', workers) / rps('squid', workers),
    keywayCpuOverSquid: (row('keyway', workers)?.cpuMsPerRequest ?? Number.NaN) / (row('squid', workers)?.cpuMsPerRequest ?? Number.NaN),
  };
}

export function scalingTable(f: ScalingFigures): string {
  const direct = f.rows.find((r) => r.proxy === 'direct');
  const added = (v: number, base: number | undefined) => (base === undefined ? '' : `+${fixed(v - base, 2)}`);
  const body = table(
    ['route', 'workers', 'req/s', 'CPU ms/req', 'added p50 ms', 'added p99 ms', 'RSS MiB'],
    f.rows.map((r) => [
      r.label,
      String(r.workers),
      fixed(r.rps, 0),
      Number.isNaN(r.cpuMsPerRequest) ? '' : fixed(r.cpuMsPerRequest, 3),
      r.proxy === 'direct' ? fixed(r.p50, 2) : added(r.p50, direct?.p50),
      r.proxy === 'direct' ? fixed(r.p99, 2) : added(r.p99, direct?.p99),
      r.rssMiB === undefined ? '' : fixed(r.rssMiB, 1),
    ]),
  );
  const slope = (n: number) => (Number.isFinite(n) ? `${fixed(n, 2)}x` : 'n/a');
  return [
    body,
    `slope, 1 -> ${f.workers} workers (req/s at ${f.workers} / at 1): keyway ${slope(f.keywaySlope)}, squid ${slope(f.squidSlope)}`,
    `keyway / squid at ${f.workers} workers: ${slope(f.keywayOverSquid)} req/s, ${slope(f.keywayCpuOverSquid)} CPU per request`,
  ].join('\n');
}

/** Issue 38's target: keyway at N workers serves >= 1.3x squid's req/s at N. */
export function scalingTargetLines(f: ScalingFigures | undefined): TargetLine[] {
  const target = `s11 req/s, keyway with ${f?.workers ?? 'N'} workers >= 1.3x squid with as many (SMP)`;
  if (f === undefined || !Number.isFinite(f.keywayOverSquid)) return [{ target, measured: 'n/a (s11 did not run with squid)', pass: false, info: true }];
  return [
    {
      target,
      measured: `${fixed(f.keywayOverSquid, 3)}x (slope 1 -> ${f.workers}: keyway ${fixed(f.keywaySlope, 2)}x, squid ${fixed(f.squidSlope, 2)}x)`,
      pass: f.keywayOverSquid >= 1.3,
    },
  ];
}
