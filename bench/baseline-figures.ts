// The stored half of the baseline guard (issue 64): figures that cannot be re-measured interleaved
// against an old build, because they are judged against a peer in the same run (s2 CPU per request
// against squid's, s5's added time per new host against squid's) or are a state after a scenario
// (RSS after s2 and s5). bench/baseline.json keeps the landed build's values; a full run compares
// its own with them, so a feature that costs more says so in the run that adds it.
import type { LatencyFigures, NewHostFigures } from './report.ts';
import { addedPerHost } from './report.ts';
import type { RssReadings, TargetLine } from './report-targets.ts';
import { type BurstSeries, burstFigures, cpuUs, perRestartRatio } from './burst-rounds.ts';
import { fixed, signed } from './stats.ts';

export interface StoredPeerFigures {
  /** keyway's s2 CPU per request ÷ squid's, in the same run. */
  s2CpuVsSquid: number;
  /** keyway's s5 added ms per new host minus squid's (negative: keyway is faster). */
  s5AddedMsVsSquid: number;
  rssAfterS2MiB: number;
  rssAfterS5MiB: number;
  /** Issue 92, the short rounds (bench/short-rounds.ts): s2's first requests after a fresh start, keyway's CPU per request ÷ squid's, same restart, median. */
  shortS2CpuVsSquid?: number | undefined;
  /** The same rounds: s1's first requests, keyway's added p50 minus squid's, ms. */
  shortS1AddedMsVsSquid?: number | undefined;
}

/**
 * How much worse than stored a figure may be before the guard says so: this machine's spread between
 * full runs of builds an interleaved A/B called equal (2026-11-26/27: s2 CPU ÷ squid 1.60 and 1.77;
 * s5 − squid -3.2 and -3.9 ms; RSS after s2 109.1 and 109.7 MiB). A smaller change is judged with
 * `node bench/ab.ts`, not here.
 */
export const GUARD_SLACK = { cpuRatio: 0.15, s5Ms: 1, rssMiB: 5, shortCpuRatio: 0.3, shortS1Ms: 0.08 } as const;

export interface PeerFiguresNow {
  s2: LatencyFigures;
  s5: NewHostFigures;
  rssAfterS2: RssReadings;
  rssAfterS5: RssReadings;
}

/** This run's values of the stored figures (NaN where squid did not run). */
export function peerFiguresOf(now: PeerFiguresNow, short?: BurstSeries): StoredPeerFigures {
  const squidCpu = now.s2.routes.squid?.cpuMsPerRequest ?? Number.NaN;
  const squidShort = short?.rounds['squid'] ? burstFigures(short, 'squid') : undefined;
  return {
    shortS2CpuVsSquid: short && squidShort ? perRestartRatio(short, 'keyway', 'squid', (r) => cpuUs(r.s2)).median : Number.NaN,
    shortS1AddedMsVsSquid: short && squidShort ? burstFigures(short, 'keyway').s1AddedP50Ms - squidShort.s1AddedP50Ms : Number.NaN,
    s2CpuVsSquid: now.s2.keyway.cpuMsPerRequest / squidCpu,
    s5AddedMsVsSquid: now.s5.addedMsPerHost - addedPerHost(now.s5, 'squid'),
    rssAfterS2MiB: now.rssAfterS2.keyway,
    rssAfterS5MiB: now.rssAfterS5.keyway,
  };
}

/** One line per stored figure: this run's against the stored, MISS when worse by more than the slack. */
export function storedGuardLines(stored: StoredPeerFigures, now: StoredPeerFigures): TargetLine[] {
  const line = (target: string, current: number, kept: number, slack: number, unit: (n: number) => string): TargetLine => {
    if (!Number.isFinite(current)) return { target, measured: 'n/a (squid did not run)', pass: false, info: true };
    return { target, measured: `${unit(current)} vs ${unit(kept)} stored`, pass: current <= kept + slack };
  };
  const ratio = (n: number) => `${fixed(n, 3)}x`;
  const ms = (n: number) => `${signed(n)} ms`;
  const mib = (n: number) => `${fixed(n, 1)} MiB`;
  return [
    line(`s2 CPU per request ÷ squid's: no more than stored + ${GUARD_SLACK.cpuRatio}`, now.s2CpuVsSquid, stored.s2CpuVsSquid, GUARD_SLACK.cpuRatio, ratio),
    line(`s5 added per new host − squid's: no more than stored + ${GUARD_SLACK.s5Ms} ms`, now.s5AddedMsVsSquid, stored.s5AddedMsVsSquid, GUARD_SLACK.s5Ms, ms),
    line(`RSS after s2: no more than stored + ${GUARD_SLACK.rssMiB} MiB`, now.rssAfterS2MiB, stored.rssAfterS2MiB, GUARD_SLACK.rssMiB, mib),
    line(`RSS after s5: no more than stored + ${GUARD_SLACK.rssMiB} MiB`, now.rssAfterS5MiB, stored.rssAfterS5MiB, GUARD_SLACK.rssMiB, mib),
    // Issue 92: a change that costs a fresh process's first requests says so, though the long rounds hide it.
    ...(stored.shortS2CpuVsSquid === undefined
      ? []
      : [
          line(
            `short rounds, s2's first requests: CPU ÷ squid's no more than stored + ${GUARD_SLACK.shortCpuRatio}`,
            now.shortS2CpuVsSquid ?? Number.NaN,
            stored.shortS2CpuVsSquid,
            GUARD_SLACK.shortCpuRatio,
            ratio,
          ),
        ]),
    ...(stored.shortS1AddedMsVsSquid === undefined
      ? []
      : [
          line(
            `short rounds, s1's first requests: added p50 − squid's no more than stored + ${GUARD_SLACK.shortS1Ms} ms`,
            now.shortS1AddedMsVsSquid ?? Number.NaN,
            stored.shortS1AddedMsVsSquid,
            GUARD_SLACK.shortS1Ms,
            (n) => `${signed(n, 3)} ms`,
          ),
        ]),
  ];
}
