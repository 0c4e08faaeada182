// s6 (refresh under load): its figures and its table, compared with s2 through keyway and direct.
import type { LatencyFigures } from './report.ts';
import type { Plan, RefreshLoadResult } from './scenarios.ts';
import { fixed, ratio, table } from './stats.ts';
import type { OAuthHostCounts } from './upstream.ts';

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
