// Reads a V8 .cpuprofile (node --cpu-prof) and reports where the self time went, by function and by
// file or package, so the dominant costs of keyway's request path are visible without a viewer.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { table } from './stats.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileReport {
  file: string;
  totalMs: number;
  busyMs: number;
  byFunction: Array<{ name: string; ms: number; percentOfBusy: number }>;
  byArea: Array<{ name: string; ms: number; percentOfBusy: number }>;
  /** Self time in keyway's own files (src/), all of them: the share issue 51 halves on the bearer path. */
  own: { ms: number; percentOfBusy: number };
}

/** Where a frame belongs: keyway's own files, an npm package, a Node built-in, or a V8 pseudo-frame. */
function area(url: string, fn: string): string {
  if (!url) return fn || '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return `npm:${pkg[1]}`;
  // keyway's own files: src/ run as TypeScript, or dist/ as `npm run bench` runs the build (its .js
  // named as the .ts it came from). dist/ is a bundle (scripts/bundle.mjs): a chunk holds many of
  // src/'s modules, so it is named as itself, without its hash (run from src/ for each file's share).
  const chunk = /\/dist\/chunks\/(.+?)-[\w-]{8}\.js$/.exec(url);
  if (chunk?.[1]) return `keyway:dist/chunks/${chunk[1]}`;
  const src = /\/(?:src|dist)\/(.+?)(?:\.js)?$/.exec(url);
  if (src?.[1]) return `keyway:src/${src[1].replace(/\.ts$/, '')}.ts`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').replace(/\/.*$/, '');
  return url;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.+)$/.exec(url);
  if (pkg?.[1]) return pkg[1];
  const src = /\/(src\/.+)$/.exec(url);
  if (src?.[1]) return src[1];
  return url.replace(/^node:internal\//, 'node:');
}

export function summariseProfile(file: string, top = 15): ProfileReport {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute the interval after a sample to it.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] ?? -1;
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const fnTotals = new Map<string, number>();
  const areaTotals = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = url ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}` : functionName || '(native)';
    fnTotals.set(name, (fnTotals.get(name) ?? 0) + us);
    const a = area(url, functionName);
    areaTotals.set(a, (areaTotals.get(a) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, percentOfBusy: busyUs > 0 ? (100 * us) / busyUs : 0 }));
  const ownUs = [...areaTotals].filter(([name]) => name.startsWith('keyway:')).reduce((sum, [, us]) => sum + us, 0);
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    byFunction: rank(fnTotals),
    byArea: rank(areaTotals),
    own: { ms: ownUs / 1000, percentOfBusy: busyUs > 0 ? (100 * ownUs) / busyUs : 0 },
  };
}

/** The newest .cpuprofile in a folder, if any. */
export function latestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const last = files.at(-1);
  return last === undefined ? undefined : join(dir, last);
}

export function formatProfile(report: ProfileReport): string {
  const rows = (list: ProfileReport['byArea']) => list.map((r) => [r.name, r.ms.toFixed(0), `${r.percentOfBusy.toFixed(1)}%`]);
  return [
    `CPU profile of the keyway child: ${report.file}`,
    `  sampled ${(report.totalMs / 1000).toFixed(1)} s, busy (not idle) ${(report.busyMs / 1000).toFixed(1)} s`,
    `  keyway's own files (src/): ${report.own.ms.toFixed(0)} ms, ${report.own.percentOfBusy.toFixed(1)}% of busy`,
    '',
    table(['self time by area', 'ms', 'of busy'], rows(report.byArea)),
    '',
    table(['self time by function', 'ms', 'of busy'], rows(report.byFunction)),
  ].join('\n');
}
