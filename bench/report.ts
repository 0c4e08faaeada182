// Turns the raw per-round results into the printed tables, the target summary and the JSON report.
import type { RouteName } from './clients.ts';
import type { LatencyResult, NewHostResult, Plan, RefreshLoadResult, ThroughputResult } from './scenarios.ts';
import type { OAuthHostCounts } from './upstream.ts';
import { fixed, median, ratio, signed, table } from './stats.ts';

export type Pair<T> = Record<RouteName, T>;

export interface LatencyFigures {
  direct: { rps: number; p50: number; p99: number };
  keyway: { rps: number; p50: number; p99: number };
  /** keyway ÷ direct, req/s. */
  ratio: number;
  addedP50Ms: number;
  addedP99Ms: number;
}

export interface ThroughputFigures {
  directMiBps: number;
  keywayMiBps: number;
  ratio: number;
}

export interface NewHostFigures {
  direct: NewHostResult;
  keyway: NewHostResult;
  addedMsPerHost: number;
  addedP50Ms: number;
}

export interface TargetLine {
  target: string;
  measured: string;
  pass: boolean;
  /** A figure shown beside the targets, with no threshold: printed as "info", not counted. */
  info?: boolean;
}

export interface RefreshFigures {
  rps: number;
  p50: number;
  p99: number;
  /** s6 req/s ÷ s2's direct req/s (and ÷ s2 through keyway). */
  ratioToS2Direct: number;
  ratioToS2Keyway: number;
  seconds: number;
  /** How long keyway uses each access token: expires_in minus refresh_skew. */
  tokenUseS: number;
  /** Expiries in the window: seconds ÷ tokenUseS. */
  expiries: number;
  /** Token endpoint calls in the window (refused ones included). */
  tokenCalls: number;
  tokenRefreshes: number;
  /** Calls the window may hold: at least max(1, floor(expiries) − 1), at most expiries + 1. */
  minCalls: number;
  maxCalls: number;
  onePerExpiry: boolean;
  failures: number;
  firstFailure: string | undefined;
  warmup: RefreshLoadResult['warmup'];
  /** What the upstream saw on the OAuth host during s6, warm-up included. */
  upstream: OAuthHostCounts;
}

const ROUTES: readonly RouteName[] = ['direct', 'keyway'];

/** Three decimals in the summary, so a value just under a threshold never prints as equal to it. */
const ratio3 = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(3)}x` : 'n/a');

export function latencyFigures(rounds: ReadonlyArray<Pair<LatencyResult>>): LatencyFigures {
  const pick = (route: RouteName) => ({
    rps: median(rounds.map((r) => r[route].rps)),
    p50: median(rounds.map((r) => r[route].latencyMs.p50)),
    p99: median(rounds.map((r) => r[route].latencyMs.p99)),
  });
  const direct = pick('direct');
  const keyway = pick('keyway');
  return { direct, keyway, ratio: keyway.rps / direct.rps, addedP50Ms: keyway.p50 - direct.p50, addedP99Ms: keyway.p99 - direct.p99 };
}

export function throughputFigures(rounds: ReadonlyArray<Pair<ThroughputResult>>): ThroughputFigures {
  const directMiBps = median(rounds.map((r) => r.direct.mibPerSecond));
  const keywayMiBps = median(rounds.map((r) => r.keyway.mibPerSecond));
  return { directMiBps, keywayMiBps, ratio: keywayMiBps / directMiBps };
}

export function newHostFigures(pair: Pair<NewHostResult>): NewHostFigures {
  return {
    direct: pair.direct,
    keyway: pair.keyway,
    addedMsPerHost: pair.keyway.msPerHost - pair.direct.msPerHost,
    addedP50Ms: pair.keyway.latencyMs.p50 - pair.direct.latencyMs.p50,
  };
}

export function refreshFigures(r: RefreshLoadResult, plan: Plan['s6'], s2: LatencyFigures, upstream: OAuthHostCounts): RefreshFigures {
  const tokenUseS = plan.tokenLifetimeS - plan.refreshSkewS;
  const expiries = r.seconds / tokenUseS;
  // A window of T seconds holds floor(T/P) or ceil(T/P) refresh instants of period P; the real
  // period is a little longer than P (the first request after the skew starts each refresh).
  const maxCalls = expiries + 1;
  const minCalls = Math.max(1, Math.floor(expiries) - 1);
  return {
    rps: r.rps,
    p50: r.latencyMs.p50,
    p99: r.latencyMs.p99,
    ratioToS2Direct: r.rps / s2.direct.rps,
    ratioToS2Keyway: r.rps / s2.keyway.rps,
    seconds: r.seconds,
    tokenUseS,
    expiries,
    tokenCalls: r.tokenCalls,
    tokenRefreshes: r.tokenRefreshes,
    minCalls,
    maxCalls,
    onePerExpiry: r.tokenCalls >= minCalls && r.tokenCalls <= maxCalls,
    failures: r.failures,
    firstFailure: r.firstFailure,
    warmup: r.warmup,
    upstream: { ...upstream },
  };
}

export function refreshTable(r: RefreshLoadResult, f: RefreshFigures, plan: Plan['s6']): string {
  const u = f.upstream;
  const refused = u.refusedExpired + u.refusedUnknown + u.refusedMissing;
  return [
    table(
      ['route', 'requests', 's', 'req/s', 'p50 ms', 'p99 ms'],
      [['keyway', String(r.requests), fixed(r.seconds), fixed(f.rps, 0), fixed(f.p50, 3), fixed(f.p99, 3)]],
    ),
    `req/s ÷ s2 direct: ${ratio(f.ratioToS2Direct)} (÷ s2 through keyway: ${ratio(f.ratioToS2Keyway)})`,
    `access token: expires_in ${plan.tokenLifetimeS} s, refreshed ${plan.refreshSkewS} s early (refresh_skew), so each lasts ${f.tokenUseS} s: ${fixed(f.seconds)} s ÷ ${f.tokenUseS} s = ${fixed(f.expiries)} expiries in the window`,
    `token endpoint calls in the window: ${f.tokenCalls} (${f.tokenRefreshes} answered with new tokens); warm-up: ${f.warmup.tokenCalls} call(s) for the expired seed token`,
    `one call per expiry: ${f.onePerExpiry ? 'PASS' : 'MISS'} (${f.tokenCalls} calls, allowed ${f.minCalls}…${fixed(f.maxCalls)})`,
    `failures (non-200 to the client): ${f.failures} in the window, ${f.warmup.failures} in the warm-up${f.firstFailure ? `; first: ${f.firstFailure}` : ''}`,
    `upstream, OAuth host: ${u.total} requests, ${u.okCurrent} with the current token, ${u.okPrevious} with the one it replaced; 401s: ${refused} (${u.refusedExpired} expired, ${u.refusedUnknown} unknown, ${u.refusedMissing} without a token)`,
  ].join('\n');
}

export function latencyTable(rounds: ReadonlyArray<Pair<LatencyResult>>, f: LatencyFigures): string {
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const route of ROUTES) {
      const r = round[route];
      rows.push([`${i + 1}`, route, String(r.requests), fixed(r.seconds), fixed(r.rps, 0), fixed(r.latencyMs.p50, 3), fixed(r.latencyMs.p99, 3)]);
    }
  });
  for (const route of ROUTES) rows.push(['median', route, '', '', fixed(f[route].rps, 0), fixed(f[route].p50, 3), fixed(f[route].p99, 3)]);
  return [
    table(['round', 'route', 'requests', 's', 'req/s', 'p50 ms', 'p99 ms'], rows),
    `keyway ÷ direct: ${ratio(f.ratio)} req/s; keyway adds ${signed(f.addedP50Ms, 3)} ms at p50, ${signed(f.addedP99Ms, 3)} ms at p99`,
  ].join('\n');
}

export function throughputTable(rounds: ReadonlyArray<Pair<ThroughputResult>>, f: ThroughputFigures): string {
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const route of ROUTES) {
      const r = round[route];
      rows.push([`${i + 1}`, route, String(r.transfers), fixed(r.seconds), fixed(r.mibPerSecond, 1)]);
    }
  });
  rows.push(['median', 'direct', '', '', fixed(f.directMiBps, 1)], ['median', 'keyway', '', '', fixed(f.keywayMiBps, 1)]);
  return [table(['round', 'route', 'MiB moved', 's', 'MiB/s'], rows), `keyway ÷ direct: ${ratio(f.ratio)}`].join('\n');
}

export function newHostTable(f: NewHostFigures): string {
  const row = (route: RouteName) => {
    const r = f[route];
    return [route, String(r.hosts), fixed(r.msPerHost), fixed(r.latencyMs.p50), fixed(r.latencyMs.p99)];
  };
  return [
    table(['route', 'hosts', 'ms/host (mean)', 'p50 ms', 'p99 ms'], [row('direct'), row('keyway')]),
    `keyway adds ${signed(f.addedMsPerHost)} ms per new host (mean), ${signed(f.addedP50Ms)} ms at p50`,
  ].join('\n');
}

export interface SummaryInput {
  s1: LatencyFigures;
  s2: LatencyFigures;
  s3: ThroughputFigures;
  s4: ThroughputFigures;
  s5: NewHostFigures;
  rssAfterS2MiB: number;
  rssAfterS5MiB: number;
  withoutCredential: number;
  s6: RefreshFigures;
}

/** The targets from the issue, one line each. */
export function targetLines(s: SummaryInput): TargetLine[] {
  return [
    { target: 's1 sequential GET: keyway adds <= 0.25 ms at p50', measured: `${signed(s.s1.addedP50Ms, 3)} ms`, pass: s.s1.addedP50Ms <= 0.25 },
    { target: 's2 64 connections: req/s >= 0.40x direct', measured: ratio3(s.s2.ratio), pass: s.s2.ratio >= 0.4 },
    { target: 's3 1 MiB downloads: MiB/s >= 0.30x direct', measured: ratio3(s.s3.ratio), pass: s.s3.ratio >= 0.3 },
    { target: 's4 1 MiB uploads: MiB/s >= 0.30x direct', measured: ratio3(s.s4.ratio), pass: s.s4.ratio >= 0.3 },
    { target: 's5 new host: keyway adds <= 5 ms per host', measured: `${signed(s.s5.addedMsPerHost)} ms`, pass: s.s5.addedMsPerHost <= 5 },
    { target: 'keyway RSS after s2 <= 120 MiB', measured: `${fixed(s.rssAfterS2MiB, 1)} MiB`, pass: s.rssAfterS2MiB <= 120 },
    { target: 'keyway RSS after s5 <= 120 MiB', measured: `${fixed(s.rssAfterS5MiB, 1)} MiB`, pass: s.rssAfterS5MiB <= 120 },
    {
      target: 'requests reaching the upstream through keyway without the credential == 0',
      measured: String(s.withoutCredential),
      pass: s.withoutCredential === 0,
    },
    {
      target: 's6 refresh under load: req/s vs s2 direct (no target)',
      measured: `${ratio3(s.s6.ratioToS2Direct)} (${fixed(s.s6.rps, 0)} req/s)`,
      pass: true,
      info: true,
    },
    {
      target: 's6 refresh under load: token endpoint calls, one per expiry (<= expiries + 1)',
      measured: `${s.s6.tokenCalls} calls, ${fixed(s.s6.expiries, 1)} expiries`,
      pass: s.s6.onePerExpiry,
    },
    {
      target: 's6 refresh under load: non-200 responses == 0',
      measured: String(s.s6.failures + s.s6.warmup.failures),
      pass: s.s6.failures + s.s6.warmup.failures === 0,
    },
  ];
}

export function summaryTable(lines: readonly TargetLine[]): string {
  return table(
    ['target', 'measured', 'result'],
    lines.map((l) => [l.target, l.measured, l.info ? 'info' : l.pass ? 'PASS' : 'MISS']),
  );
}
