// Small numeric helpers for the benchmark: percentiles, medians, bounded loops, formatting.

export const MiB = 1024 * 1024;

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function summarise(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const total = sorted.reduce((a, b) => a + b, 0);
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sorted.length ? total / sorted.length : Number.NaN };
}

/** Every loop in the benchmark is bounded by a count and a time, whichever comes first. */
export interface Bounds {
  maxCount: number;
  maxMs: number;
}

export interface LoopResult {
  count: number;
  ms: number;
}

/** Runs fn one call after another until a bound is reached. */
export async function sequential(bounds: Bounds, fn: (i: number) => Promise<void>): Promise<LoopResult> {
  const start = performance.now();
  let i = 0;
  while (i < bounds.maxCount && performance.now() - start < bounds.maxMs) {
    await fn(i);
    i++;
  }
  return { count: i, ms: performance.now() - start };
}

/**
 * `workers` concurrent loops sharing one counter. Every started call finishes before this returns,
 * so `count` is the number of completed calls and `ms` includes the tail. The first error stops
 * every worker and is rethrown.
 */
export async function parallel(workers: number, bounds: Bounds, fn: (i: number) => Promise<void>): Promise<LoopResult> {
  const start = performance.now();
  let started = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && started < bounds.maxCount && performance.now() - start < bounds.maxMs) {
      const i = started++;
      try {
        await fn(i);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== undefined) throw failure;
  return { count: started, ms: performance.now() - start };
}

export const fixed = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a');
export const signed = (n: number, digits = 2): string => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(digits)}` : 'n/a');

/** Left-aligned text table. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The geometric mean of positive ratios (others left out); NaN when none is. */
export function geometricMean(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  return finite.length === 0 ? Number.NaN : Math.exp(finite.reduce((sum, v) => sum + Math.log(v), 0) / finite.length);
}

/** The geometric mean of ratios and its 95% interval (± 2 standard errors of the logs: the rounds taken as independent). */
export function geometricInterval(ratios: readonly number[]): { mean: number; low: number; high: number } {
  const logs = ratios.filter((v) => Number.isFinite(v) && v > 0).map(Math.log);
  const m = logs.reduce((a, b) => a + b, 0) / logs.length;
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, logs.length - 1));
  const half = (2 * sd) / Math.sqrt(logs.length);
  return { mean: Math.exp(m), low: Math.exp(m - half), high: Math.exp(m + half) };
}
