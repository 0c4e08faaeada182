// s8 and s9 (signed.ts): figures (medians over the rounds, per grant) and their tables. Each compares
// the SigV4 grant with the bearer grant run in the same rounds; s8 also shows s2's keyway figure.
import type { AwsHostCounts } from './aws-host.ts';
import type { LatencyFigures, LatencyMedians } from './report.ts';
import type { LatencyResult, ThroughputResult } from './scenarios.ts';
import type { Paired } from './signed.ts';
import { fixed, median, ratio, signed, table } from './stats.ts';

/** The issue 24 target: signing a small request costs at most this much keyway CPU per request, relative to a bearer grant's. */
export const SIGV4_CPU_TARGET = 1.2;

export interface SignedGetFigures {
  bearer: LatencyMedians;
  sigv4: LatencyMedians;
  /** SigV4 ÷ bearer, CPU ms per request (the target) and req/s. */
  cpuRatio: number;
  rpsRatio: number;
  addedP50Ms: number;
  /** SigV4's CPU per request ÷ s2's keyway median (the bearer grant, earlier in the run). */
  cpuRatioToS2: number;
}

export interface UploadMedians {
  mibPerSecond: number;
  /** keyway CPU ms per MiB uploaded (each transfer is 1 MiB). */
  cpuMsPerMiB: number;
}

export interface SignedUploadFigures {
  bearer: UploadMedians;
  sigv4: UploadMedians;
  /** SigV4 ÷ bearer. */
  throughputRatio: number;
  cpuRatio: number;
  addedCpuMsPerMiB: number;
  /** SigV4's MiB/s ÷ s4's keyway median. */
  throughputRatioToS4: number;
}

const perRequest = (cpuMs: number | undefined, count: number) => (cpuMs === undefined || count === 0 ? Number.NaN : cpuMs / count);

export function latencyMedians(runs: readonly LatencyResult[]): LatencyMedians {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.latencyMs.p50)),
    p99: median(runs.map((r) => r.latencyMs.p99)),
    cpuMsPerRequest: median(runs.map((r) => perRequest(r.cpuMs, r.requests)).filter(Number.isFinite)),
  };
}

function uploadMedians(runs: readonly ThroughputResult[]): UploadMedians {
  return {
    mibPerSecond: median(runs.map((r) => r.mibPerSecond)),
    cpuMsPerMiB: median(runs.map((r) => perRequest(r.cpuMs, r.transfers)).filter(Number.isFinite)),
  };
}

export function signedGetFigures(rounds: ReadonlyArray<Paired<LatencyResult>>, s2: LatencyFigures): SignedGetFigures {
  const bearer = latencyMedians(rounds.map((r) => r.bearer));
  const sigv4 = latencyMedians(rounds.map((r) => r.sigv4));
  return {
    bearer,
    sigv4,
    cpuRatio: sigv4.cpuMsPerRequest / bearer.cpuMsPerRequest,
    rpsRatio: sigv4.rps / bearer.rps,
    addedP50Ms: sigv4.p50 - bearer.p50,
    cpuRatioToS2: sigv4.cpuMsPerRequest / s2.keyway.cpuMsPerRequest,
  };
}

export function signedUploadFigures(rounds: ReadonlyArray<Paired<ThroughputResult>>, s4KeywayMiBps: number): SignedUploadFigures {
  const bearer = uploadMedians(rounds.map((r) => r.bearer));
  const sigv4 = uploadMedians(rounds.map((r) => r.sigv4));
  return {
    bearer,
    sigv4,
    throughputRatio: sigv4.mibPerSecond / bearer.mibPerSecond,
    cpuRatio: sigv4.cpuMsPerMiB / bearer.cpuMsPerMiB,
    addedCpuMsPerMiB: sigv4.cpuMsPerMiB - bearer.cpuMsPerMiB,
    throughputRatioToS4: sigv4.mibPerSecond / s4KeywayMiBps,
  };
}

const GRANTS = ['bearer', 'sigv4'] as const;

/**
 * A latency table for rounds of paired runs (s8's grants, s10's paths): each round's runs, then
 * each side's medians. `column` heads the side's column and `label` names each side in it.
 */
export function pairedLatencyTable<K extends string>(
  rounds: ReadonlyArray<Record<K, LatencyResult>>,
  sides: readonly K[],
  medians: Record<K, LatencyMedians>,
  column: string,
  label: (side: K) => string = (side) => side,
): string {
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const side of sides) {
      const r = round[side];
      rows.push([
        `${i + 1}`,
        label(side),
        String(r.requests),
        fixed(r.seconds),
        fixed(r.rps, 0),
        fixed(r.latencyMs.p50, 3),
        fixed(r.latencyMs.p99, 3),
        fixed(perRequest(r.cpuMs, r.requests), 3),
      ]);
    }
  });
  for (const side of sides) {
    const m = medians[side];
    rows.push(['median', label(side), '', '', fixed(m.rps, 0), fixed(m.p50, 3), fixed(m.p99, 3), fixed(m.cpuMsPerRequest, 3)]);
  }
  return table(['round', column, 'requests', 's', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req'], rows);
}

export function signedGetTable(rounds: ReadonlyArray<Paired<LatencyResult>>, f: SignedGetFigures, s2: LatencyFigures): string {
  return [
    pairedLatencyTable(rounds, GRANTS, f, 'keyway grant'),
    `sigv4 ÷ bearer: CPU per request ${ratio(f.cpuRatio)} (target <= ${SIGV4_CPU_TARGET}x); ${ratio(f.rpsRatio)} req/s; adds ${signed(f.addedP50Ms, 3)} ms at p50`,
    `sigv4 against s2 through keyway (bearer, earlier in the run): CPU per request ${ratio(f.cpuRatioToS2)} (${fixed(f.sigv4.cpuMsPerRequest, 3)} vs ${fixed(s2.keyway.cpuMsPerRequest, 3)} ms)`,
  ].join('\n');
}

export function signedUploadTable(rounds: ReadonlyArray<Paired<ThroughputResult>>, f: SignedUploadFigures, s4KeywayMiBps: number): string {
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const grant of GRANTS) {
      const r = round[grant];
      rows.push([`${i + 1}`, grant, String(r.transfers), fixed(r.seconds), fixed(r.mibPerSecond, 1), fixed(perRequest(r.cpuMs, r.transfers), 2)]);
    }
  });
  for (const grant of GRANTS) rows.push(['median', grant, '', '', fixed(f[grant].mibPerSecond, 1), fixed(f[grant].cpuMsPerMiB, 2)]);
  return [
    table(['round', 'keyway grant', 'MiB moved', 's', 'MiB/s', 'CPU ms/MiB'], rows),
    `holding and hashing each body (sigv4 ÷ bearer): ${ratio(f.throughputRatio)} MiB/s; CPU per MiB ${ratio(f.cpuRatio)} (${signed(f.addedCpuMsPerMiB)} ms per MiB)`,
    `sigv4 against s4 through keyway (bearer, earlier in the run): ${ratio(f.throughputRatioToS4)} MiB/s (${fixed(f.sigv4.mibPerSecond, 1)} vs ${fixed(s4KeywayMiBps, 1)})`,
  ].join('\n');
}

export function awsHostLine(c: AwsHostCounts): string {
  return (
    `upstream, SigV4 host (s8 and s9, warm-ups included): ${c.total} requests, ${c.signed} with keyway's signature for the bench key` +
    ` (${c.verified} of them verified in full with AWS's signer, ${c.verifyFailed} failed), ${c.refused} without it` +
    (c.firstProblem ? `; first problem: ${c.firstProblem}` : '')
  );
}
