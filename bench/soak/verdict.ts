// The soak's targets, judged from the figures alone (no I/O): 0 errors, RSS growth under 10 MiB
// after the first minute, p99 drift under 20%, descriptors back to baseline once the load drains.
import type { WindowStats } from './load.ts';

export const TARGETS = { rssGrowthMiB: 10, p99DriftPct: 20 } as const;

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
  /** The first window that starts at or after the mark, and the last window. */
  firstWindow: number;
  lastWindow: number;
  firstP99Ms: number;
  lastP99Ms: number;
  driftPct: number;
}

export interface FdFigures {
  afterStart: number;
  /** After the warm-up, its connections closed: what the run must come back to. */
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

export function driftFigures(windows: readonly WindowStats[], durationMs: number): DriftFigures {
  const { markS } = steadyMark(durationMs);
  const last = windows[windows.length - 1];
  const first = windows.find((w) => w.startS >= markS - 1e-9) ?? last;
  const firstP99Ms = first?.latencyMs.p99 ?? Number.NaN;
  const lastP99Ms = last?.latencyMs.p99 ?? Number.NaN;
  return {
    firstWindow: first?.index ?? -1,
    lastWindow: last?.index ?? -1,
    firstP99Ms,
    lastP99Ms,
    driftPct: ((lastP99Ms - firstP99Ms) / firstP99Ms) * 100,
  };
}

export function judge(input: { errors: Record<string, number>; rss: RssFigures; drift: DriftFigures; fds: FdFigures }): Target[] {
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
      detail: `${drift.driftPct >= 0 ? '+' : ''}${drift.driftPct.toFixed(1)}% (window ${drift.firstWindow} p99 ${drift.firstP99Ms.toFixed(2)} ms -> window ${drift.lastWindow} p99 ${drift.lastP99Ms.toFixed(2)} ms)`,
    },
    {
      name: 'descriptors back to baseline',
      pass: fds.afterDrain <= fds.baseline,
      detail: `baseline ${fds.baseline}, peak during load ${fds.peakDuringLoad}, after the drain ${fds.afterDrain} (${(fds.settledMs / 1000).toFixed(1)} s after closing; ${fds.afterStart} right after start)`,
    },
  ];
}
