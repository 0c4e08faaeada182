// Turns the raw per-round results into figures: medians per route over the rounds, and the
// comparisons the report prints (each proxy ÷ direct, keyway ÷ squid, keyway ÷ the floor).
// Tables are in report-tables.ts, the target lines in report-targets.ts, s6 in report-refresh.ts.
import type { PerRoute, ProxyName, RouteName } from './clients.ts';
import type { LatencyResult, NewHostResult, ThroughputResult } from './scenarios.ts';
import { median } from './stats.ts';

export const ROUTE_ORDER: readonly RouteName[] = ['direct', 'keyway', 'squid', 'floor'];
/** The proxies keyway is compared with in the same run, in print order. */
export const PEERS: readonly Exclude<ProxyName, 'keyway'>[] = ['squid', 'floor'];

/** The routes present in a result, in print order. */
export function routesOf<T>(r: PerRoute<T>): RouteName[] {
  return ROUTE_ORDER.filter((name) => r[name] !== undefined);
}

export interface LatencyMedians {
  rps: number;
  p50: number;
  p99: number;
  /** CPU ms the proxy spent per request in the timed loop (NaN for direct, or when not measured). */
  cpuMsPerRequest: number;
}

export interface LatencyFigures {
  routes: PerRoute<LatencyMedians>;
  direct: LatencyMedians;
  keyway: LatencyMedians;
  /** keyway ÷ direct, req/s. */
  ratio: number;
  addedP50Ms: number;
  addedP99Ms: number;
}

export interface ThroughputFigures {
  routes: PerRoute<number>;
  directMiBps: number;
  keywayMiBps: number;
  ratio: number;
}

export interface NewHostFigures {
  routes: PerRoute<NewHostResult>;
  direct: NewHostResult;
  keyway: NewHostResult;
  /** keyway's mean minus direct's. */
  addedMsPerHost: number;
  addedP50Ms: number;
}

/** keyway's result, which `npm run bench:floor` (direct and the floor alone) has none of: its figures are then NaN. */
function keywayOf<T>(routes: PerRoute<T>): T | undefined {
  return (routes as Partial<PerRoute<T>>).keyway;
}

const NO_LATENCY: LatencyMedians = { rps: Number.NaN, p50: Number.NaN, p99: Number.NaN, cpuMsPerRequest: Number.NaN };
const NO_NEW_HOSTS: NewHostResult = {
  hosts: 0,
  msPerHost: Number.NaN,
  latencyMs: { count: 0, p50: Number.NaN, p99: Number.NaN, mean: Number.NaN },
};

function perRoute<U>(routes: readonly RouteName[], fn: (route: RouteName) => U): PerRoute<U> {
  const out: Partial<Record<RouteName, U>> = {};
  for (const route of routes) out[route] = fn(route);
  return out as PerRoute<U>;
}

export function latencyFigures(rounds: ReadonlyArray<PerRoute<LatencyResult>>): LatencyFigures {
  const first = rounds[0];
  const names = first ? routesOf(first) : (['direct', 'keyway'] as RouteName[]);
  const routes = perRoute(names, (route): LatencyMedians => {
    const runs = rounds.map((r) => r[route]).filter((r): r is LatencyResult => r !== undefined);
    return {
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.latencyMs.p50)),
      p99: median(runs.map((r) => r.latencyMs.p99)),
      cpuMsPerRequest: median(runs.filter((r) => r.cpuMs !== undefined && r.requests > 0).map((r) => (r.cpuMs ?? 0) / r.requests)),
    };
  });
  const direct = routes.direct;
  const keyway = keywayOf(routes) ?? NO_LATENCY;
  return { routes, direct, keyway, ratio: keyway.rps / direct.rps, addedP50Ms: keyway.p50 - direct.p50, addedP99Ms: keyway.p99 - direct.p99 };
}

export function throughputFigures(rounds: ReadonlyArray<PerRoute<ThroughputResult>>): ThroughputFigures {
  const first = rounds[0];
  const names = first ? routesOf(first) : (['direct', 'keyway'] as RouteName[]);
  const routes = perRoute(names, (route) => median(rounds.map((r) => r[route]?.mibPerSecond ?? Number.NaN)));
  const keyway = keywayOf(routes) ?? Number.NaN;
  return { routes, directMiBps: routes.direct, keywayMiBps: keyway, ratio: keyway / routes.direct };
}

export function newHostFigures(results: PerRoute<NewHostResult>): NewHostFigures {
  const keyway = keywayOf(results) ?? NO_NEW_HOSTS;
  return {
    routes: results,
    direct: results.direct,
    keyway,
    addedMsPerHost: keyway.msPerHost - results.direct.msPerHost,
    addedP50Ms: keyway.latencyMs.p50 - results.direct.latencyMs.p50,
  };
}

/** A proxy's mean added time per new host over direct (NaN when it did not run). */
export function addedPerHost(f: NewHostFigures, route: ProxyName): number {
  const r = f.routes[route];
  return r ? r.msPerHost - f.direct.msPerHost : Number.NaN;
}

/** A proxy's added p50 (ms) over direct (NaN when it did not run). */
export function addedP50(f: LatencyFigures, route: ProxyName): number {
  const r = f.routes[route];
  return r ? r.p50 - f.direct.p50 : Number.NaN;
}
