// The chart as helm packages it (`helm package`, which cannot be had here): keyway-chart-VERSION.tgz,
// a gzipped tar of the chart folder under `keyway/`, without what .helmignore names (rendered/),
// reproducibly (tar.mjs: sorted entries, one mtime). Refuses a chart whose generated files drifted.
//   node scripts/release/chart-package.mjs [--out release]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { CHART_DIR, driftedFiles } from '../chart/generate.mjs';
import { tarArchive } from './tar.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The top folders .helmignore leaves out (only `name/` lines: all this chart's file uses). */
function ignoredFolders() {
  return readFileSync(join(CHART_DIR, '.helmignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      if (!/^[\w.-]+\/$/.test(l)) throw new Error(`chart-package: a .helmignore line not read here: ${l}`);
      return l.slice(0, -1);
    });
}

/** The chart's files as tar entries under `keyway/`. */
export function chartEntries() {
  const ignored = new Set(ignoredFolders());
  const walk = (rel) =>
    readdirSync(join(CHART_DIR, rel)).flatMap((name) => {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (rel === '' && ignored.has(name)) return [];
      if (statSync(join(CHART_DIR, path)).isDirectory()) return [{ path: `keyway/${path}`, type: 'dir', mode: 0o755 }, ...walk(path)];
      return [{ path: `keyway/${path}`, type: 'file', mode: 0o644, data: readFileSync(join(CHART_DIR, path)) }];
    });
  return [{ path: 'keyway', type: 'dir', mode: 0o755 }, ...walk('')];
}

export function chartPackage(epoch) {
  const drifted = driftedFiles();
  if (drifted.length > 0) throw new Error(`chart-package: deploy/helm/keyway is not as generated (${drifted.join(', ')}): run node scripts/chart/generate.mjs`);
  return gzipSync(tarArchive(chartEntries(), epoch), { level: 9 });
}

/** Writes `out`/keyway-chart-VERSION.tgz (for scripts/release/main.mjs or the command line); returns its path. */
export function writeChartPackage({ out, epoch }) {
  const time = epoch ?? Number(process.env.SOURCE_DATE_EPOCH ?? execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: REPO, encoding: 'utf8' }).trim());
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  mkdirSync(out, { recursive: true });
  const path = join(out, `keyway-chart-${version}.tgz`);
  writeFileSync(path, chartPackage(time));
  return path;
}

function main() {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(REPO, 'release') } } });
  console.log(writeChartPackage({ out: values.out }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
