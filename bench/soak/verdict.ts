// The soak's targets, judged from the figures alone (no I/O): 0 errors, RSS growth under 10 MiB
// after the first minute, p99 drift under 20%, descriptors back to baseline once the load drains.
import { median } from '../stats.ts';
import type { WindowStats } from './load.ts';

export const TARGETS = { rssGrowthMiB: 10, p99DriftPct: 20, lastMinutesFlatMiB: 5 } as const;

/** The last stretch whose RSS must be flat (issue 38: once the leaf and secret caches are full). */
export const FLAT_TAIL_S = 600;
/** Runs shorter than this have no tail after the caches fill (1000 leaves at one new host a second). */
export const FLAT_MIN_RUN_S = 1200;

export interface Sample {
  /** Seconds since the load started. */
  tS: number;
  rssMiB: number;
  fds: number;
}

export interface Target {
  name: string;
  pass: boolean;
  detail: string;
}

export interface RssFigures {
  /** Where growth is measured from, and why there. */
  markS: number;
  markRule: string;
  atMarkMiB: number;
  atEndMiB: number;
  growthMiB: number;
  peakMiB: number;
}

export interface DriftFigures {
  /** The windows compared (indexes, inclusive): the first ones past the mark, and the last ones. */
  firstWindows: [number, number];
  lastWindows: [number, number];
  /** The median of those windows' p99s. */
  firstP99Ms: number;
  lastP99Ms: number;
  driftPct: number;
}

export interface FdFigures {
  afterStart: number;
  /** What the run must come back to: the count right after start, before any connection. */
  baseline: number;
  peakDuringLoad: number;
  afterDrain: number;
  /** From closing the client and idle upstream connections to reaching the baseline (or giving up). */
  settledMs: number;
}

/** The first minute, or for runs under two minutes the first 20% of the run. */
export function steadyMark(durationMs: number): { markS: number; rule: string } {
  if (durationMs >= 120_000) return { markS: 60, rule: 'after the first minute' };
  return { markS: (durationMs * 0.2) / 1000, rule: 'after the first 20% of the run (run shorter than 2 min)' };
}

export function rssFigures(samples: readonly Sample[], durationMs: number, atEndMiB: number): RssFigures {
  const { markS, rule } = steadyMark(durationMs);
  const atMark = samples.find((s) => s.tS >= markS) ?? samples[samples.length - 1];
  const atMarkMiB = atMark?.rssMiB ?? Number.NaN;
  const peakMiB = Math.max(atEndMiB, ...samples.map((s) => s.rssMiB));
  return { markS, markRule: rule, atMarkMiB, atEndMiB, growthMiB: atEndMiB - atMarkMiB, peakMiB };
}

/**
 * p99 drift: the median p99 of the last windows (up to 12: two minutes of 10 s windows) against
 * that of as many windows right after the mark. One window against one does not do: on these shared
 * machines a window's p99 moves 11-110 ms at the same load (two 30-minute soaks), so a single pair
 * passes or fails on noise; a median of a dozen tells a trend from a spike.
 */
export function driftFigures(windows: readonly WindowStats[], durationMs: number): DriftFigures {
  const { markS } = steadyMark(durationMs);
  const steady = windows.filter((w) => w.startS >= markS - 1e-9);
  const count = Math.max(1, Math.min(DRIFT_WINDOWS, Math.floor(steady.length / 2)));
  const first = steady.slice(0, count);
  const last = steady.length >= 2 ? steady.slice(-count) : steady;
  const firstP99Ms = medianP99(first);
  const lastP99Ms = medianP99(last);
  return {
    firstWindows: [first[0]?.index ?? -1, first.at(-1)?.index ?? -1],
    lastWindows: [last[0]?.index ?? -1, last.at(-1)?.index ?? -1],
    firstP99Ms,
    lastP99Ms,
    driftPct: ((lastP99Ms - firstP99Ms) / firstP99Ms) * 100,
  };
}

const DRIFT_WINDOWS = 12;

function medianP99(windows: readonly WindowStats[]): number {
  return median(windows.map((w) => w.latencyMs.p99));
}

export interface TailFigures {
  fromS: number;
  atStartMiB: number;
  atEndMiB: number;
  growthMiB: number;
}

/** RSS over the last FLAT_TAIL_S of the run, or undefined for a run too short to have one after the caches fill. */
export function tailFigures(samples: readonly Sample[], durationMs: number, atEndMiB: number): TailFigures | undefined {
  const durationS = durationMs / 1000;
  if (durationS < FLAT_MIN_RUN_S) return undefined;
  const fromS = durationS - FLAT_TAIL_S;
  const atStart = samples.find((s) => s.tS >= fromS);
  if (atStart === undefined) return undefined;
  return { fromS, atStartMiB: atStart.rssMiB, atEndMiB, growthMiB: atEndMiB - atStart.rssMiB };
}

export function judge(input: {
  errors: Record<string, number>;
  rss: RssFigures;
  drift: DriftFigures;
  fds: FdFigures;
  tail?: TailFigures | undefined;
}): Target[] {
  const errorCount = Object.values(input.errors).reduce((a, b) => a + b, 0);
  const kinds = Object.entries(input.errors)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
  const { rss, drift, fds } = input;
  return [
    { name: '0 errors', pass: errorCount === 0, detail: errorCount === 0 ? '0 errors' : `${errorCount} errors (${kinds})` },
    {
      name: `RSS growth < ${TARGETS.rssGrowthMiB} MiB`,
      pass: rss.growthMiB < TARGETS.rssGrowthMiB,
      detail: `${rss.growthMiB.toFixed(1)} MiB ${rss.markRule} (${rss.atMarkMiB.toFixed(1)} at ${rss.markS.toFixed(0)} s -> ${rss.atEndMiB.toFixed(1)} at the end; peak ${rss.peakMiB.toFixed(1)})`,
    },
    {
      name: `p99 drift < ${TARGETS.p99DriftPct}%`,
      // A p99 that fell is no drift to worry about; NaN (no steady window) fails rather than passes.
      pass: drift.driftPct < TARGETS.p99DriftPct,
      detail: `${drift.driftPct >= 0 ? '+' : ''}${drift.driftPct.toFixed(1)}% (median window p99: windows ${drift.firstWindows.join('-')} ${drift.firstP99Ms.toFixed(2)} ms -> windows ${drift.lastWindows.join('-')} ${drift.lastP99Ms.toFixed(2)} ms)`,
    },
    ...(input.tail === undefined
      ? []
      : [
          {
            name: `RSS flat over the last ${FLAT_TAIL_S / 60} min (< ${TARGETS.lastMinutesFlatMiB} MiB)`,
            pass: input.tail.growthMiB < TARGETS.lastMinutesFlatMiB,
            detail: `${input.tail.growthMiB.toFixed(1)} MiB (${input.tail.atStartMiB.toFixed(1)} at ${input.tail.fromS.toFixed(0)} s -> ${input.tail.atEndMiB.toFixed(1)} at the end)`,
          },
        ]),
    {
      name: 'descriptors back to baseline',
      pass: fds.afterDrain <= fds.baseline,
      detail: `baseline ${fds.baseline}, peak during load ${fds.peakDuringLoad}, after the drain ${fds.afterDrain} (${(fds.settledMs / 1000).toFixed(1)} s after closing; ${fds.afterStart} right after start)`,
    },
  ];
}
