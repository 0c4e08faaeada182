// Reads the Prometheus text format as /metrics serves it, into one number per series, keyed by
// `name{label="value",...}` with the labels sorted, so a test can name a series whatever order
// the exporter printed its labels in.

export type Series = Map<string, number>;

export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

export function parseMetrics(text: string): Series {
  const out: Series = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    out.set(seriesKey(match[1]!, labels), Number(match[3]));
  }
  return out;
}

/** How much each named series moved between two scrapes (a series absent before counts from 0). */
export function delta(before: Series, after: Series, name: string, labels: Record<string, string> = {}): number {
  const key = seriesKey(name, labels);
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}
