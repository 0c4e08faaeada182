// Garbage collections per side of an s2m run (bench/ab.ts --scenario=s2m --gc): the rows
// bench/gc-observer.cjs saved in the keyway child, split by the turns' spans. Both sides run in one
// process, so this says which side's answers make the collector run more often, or longer.
import { readFileSync } from 'node:fs';
import { constants } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How often gc-observer.cjs saves its rows: wait past it before reading. */
export const GC_SAVE_MS = 2000;

export const gcObserverArgs = (): string[] => [`--require=${join(import.meta.dirname, 'gc-observer.cjs')}`];

export interface Span {
  side: string;
  startNs: string;
  endNs: string;
  requests: number;
}

const KIND_NAMES = new Map<number, string>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'scavenge'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'mark-compact'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental marking'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weak callbacks'],
]);

/** One line per side and kind: collections per 1,000 answers and µs of collection per answer. */
export function gcBySide(pid: number, spans: readonly Span[]): string[] {
  const rows = JSON.parse(readFileSync(join(tmpdir(), `keyway-bench-gc-${pid}.json`), 'utf8')) as Array<[string, number, number]>;
  const bounds = spans.map((s) => ({ side: s.side, start: BigInt(s.startNs), end: BigInt(s.endNs) }));
  const requests = new Map<string, number>();
  for (const s of spans) requests.set(s.side, (requests.get(s.side) ?? 0) + s.requests);
  const sums = new Map<string, { count: number; ms: number }>();
  for (const [startNs, ms, kind] of rows) {
    const at = BigInt(startNs);
    const span = bounds.find((b) => at >= b.start && at < b.end);
    if (span === undefined) continue;
    const key = `${span.side}\0${KIND_NAMES.get(kind) ?? `kind ${kind}`}`;
    const sum = sums.get(key) ?? { count: 0, ms: 0 };
    sum.count += 1;
    sum.ms += ms;
    sums.set(key, sum);
  }
  return [...sums]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, { count, ms }]) => {
      const [side, kind] = key.split('\0') as [string, string];
      const n = requests.get(side)!;
      return `gc ${side.padEnd(7)} ${kind.padEnd(19)} ${((count / n) * 1000).toFixed(2)} per 1,000 answers, ${((ms * 1000) / n).toFixed(2)} µs an answer (${(ms / count).toFixed(2)} ms each)`;
    });
}
