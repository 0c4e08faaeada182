// Reads a V8 .cpuprofile (node --cpu-prof) and reports where the self time went, by function and by
// file or package, so the dominant costs of keyway's request path are visible without a viewer.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SourceOf } from './profile-map.ts';
import { table } from './stats.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  hitCount?: number;
}

export interface CpuProfile {
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
  /** keyway's own files by folder under src/ (src/proxy, src/audit, ...), each package, each Node module, GC, natives. */
  byFolder: Array<{ name: string; ms: number; percentOfBusy: number }>;
  /** The same time by kind: keyway's own, npm packages (with undici's wasm parser), Node's JavaScript, GC, native writes, other native/V8. */
  byKind: Array<{ name: string; ms: number; percentOfBusy: number }>;
}

type Row = { name: string; ms: number; percentOfBusy: number };

/** Native frames (no URL) that write to a socket or file: stream_base's writev/writeBuffer/write*String. */
const NATIVE_WRITE = /^(writev|writeBuffer|write\w*String|writeLatin1String|writeAsciiString)$/;

/** Which of the six kinds an area (as area() names it) falls in. */
function kindOf(areaName: string, url: string, fn: string): string {
  if (areaName.startsWith('keyway:')) return "keyway's own files";
  if (areaName.startsWith('npm:')) return 'npm packages';
  if (url.startsWith('node:')) return "Node's JavaScript (node:*)";
  if (url.startsWith('file:')) return "the bench forwarder's own script";
  if (fn === '(garbage collector)') return 'garbage collector';
  if (!url && NATIVE_WRITE.test(fn)) return 'native writes (writev, write*String)';
  return 'other native and V8 ((program), C++ bindings)';
}

/** A keyway file's folder: src/proxy/stages/x.ts -> src/proxy; src/paths.ts -> src/(top). */
function folderOf(areaName: string): string {
  if (!areaName.startsWith('keyway:')) return areaName;
  const path = areaName.slice('keyway:'.length);
  const parts = path.split('/');
  return parts.length > 2 ? `keyway:${parts[0]}/${parts[1]}` : `keyway:${parts[0]}/(top)`;
}

/** Where a frame belongs: keyway's own files, an npm package, a Node built-in, or a V8 pseudo-frame. */
function area(url: string, fn: string): string {
  if (!url) return fn || '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return `npm:${pkg[1]}`;
  // undici's HTTP parser (llhttp) is WebAssembly: its functions have wasm:// URLs.
  if (url.startsWith('wasm://')) return 'npm:undici';
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

export function summariseProfile(file: string, top = 15, sourceOf?: SourceOf): ProfileReport {
  return summariseCpuProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, file, top, sourceOf);
}

/** `sourceOf` maps a frame in dist/'s chunks to its src/ file (bench/profile-map.ts), else chunks are named as such. */
export function summariseCpuProfile(profile: CpuProfile, file: string, top = 15, sourceOf?: SourceOf): ProfileReport {
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
  const folderTotals = new Map<string, number>();
  const kindTotals = new Map<string, number>();
  const add = (m: Map<string, number>, key: string, us: number) => m.set(key, (m.get(key) ?? 0) + us);
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const mapped = url ? sourceOf?.(url, lineNumber, columnNumber ?? 0) : undefined;
    const where = mapped ? mapped : url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const name = url ? `${functionName || '(anonymous)'} ${where}` : functionName || '(native)';
    add(fnTotals, name, us);
    const a = mapped ? `keyway:${mapped}` : area(url, functionName);
    add(areaTotals, a, us);
    add(folderTotals, folderOf(a), us);
    add(kindTotals, kindOf(a, url, functionName), us);
  }
  const busyUs = totalUs - idleUs;
  const rank = (m: Map<string, number>, n = top): Row[] =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, percentOfBusy: busyUs > 0 ? (100 * us) / busyUs : 0 }));
  const ownUs = [...areaTotals].filter(([name]) => name.startsWith('keyway:')).reduce((sum, [, us]) => sum + us, 0);
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    byFunction: rank(fnTotals),
    byArea: rank(areaTotals),
    own: { ms: ownUs / 1000, percentOfBusy: busyUs > 0 ? (100 * ownUs) / busyUs : 0 },
    byFolder: rank(folderTotals),
    byKind: rank(kindTotals, kindTotals.size),
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
