// RSS after s2 and after s5, as `npm run bench` reads them, for several keyway runtime variants side
// by side, without the rest of the bench: each run starts one keyway child per variant (and with
// --floor the bare forwarder), drives s1 and s2 through all of them in rounds (each round starting
// one route later, as bench/run.ts does), reads each one's RSS, then s3, s4 and s5 the same way and
// reads it again. Several runs give medians; a single run means little on a shared machine.
//
//   node bench/memory.ts [--runs=3] [--rounds=3] [--floor] [--config=JSON] --variant=NAME[@CHECKOUT][:ARG,ARG...] ...
//
// A variant's ARGs are node options given after keyway's own (so they win: --max-semi-space-size=2,
// --no-liftoff-only) or VAR=value for the environment (MALLOC_ARENA_MAX=1). CHECKOUT is a built
// checkout (default: this one's dist/). `--variant=now` alone is keyway as configured today.
// Besides RSS it prints, after s2, the child's threads and its anonymous and file-backed RSS
// (/proc/PID/status), which tell heap growth from mapped code.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { keywayRoute, proxyRoute, type Route, type Tally } from './clients.ts';
import { type FloorChild, startFloorChild } from './floor-child.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient, withConfig } from './keyway-bench.ts';
import { type KeywayChild, startKeywayChild } from './keyway-child.ts';
import { processCpuMs } from './proc.ts';
import { type Context, FULL_PLAN, rotate, s1Sequential, s2Parallel, s3Download, s4Upload, s5NewHosts } from './scenarios.ts';
import { median } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

interface Variant {
  name: string;
  dir: string;
  nodeArgs: string[];
  env: Record<string, string>;
}

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const runs = Math.min(20, Math.max(1, Number(arg('runs') ?? 3)));
const roundCount = Math.min(5, Math.max(1, Number(arg('rounds') ?? FULL_PLAN.rounds)));
const withFloor = process.argv.includes('--floor');
/** --config=JSON: config sections merged over the bench's for every keyway variant, e.g. '{"admin":{"enabled":true}}' (the bench runs without the admin listener). */
const extraConfig = JSON.parse(arg('config') ?? '{}') as Record<string, Record<string, unknown>>;
const variants: Variant[] = process.argv.filter((a) => a.startsWith('--variant=')).map((a) => parseVariant(a.slice('--variant='.length)));
if (variants.length === 0) {
  console.error('usage: node bench/memory.ts [--runs=3] [--rounds=3] [--floor] --variant=NAME[@CHECKOUT][:ARG,ARG...] ...');
  process.exit(2);
}

function parseVariant(text: string): Variant {
  const colon = text.indexOf(':');
  const head = colon === -1 ? text : text.slice(0, colon);
  const args =
    colon === -1
      ? []
      : text
          .slice(colon + 1)
          .split(',')
          .filter(Boolean);
  const [name, dir] = head.split('@') as [string, string | undefined];
  const env: Record<string, string> = {};
  const nodeArgs: string[] = [];
  for (const a of args) {
    if (a.startsWith('--')) nodeArgs.push(a);
    else {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new Error(`not a node option nor VAR=value: ${a}`);
      env[a.slice(0, eq)] = a.slice(eq + 1);
    }
  }
  return { name, dir: resolve(dir ?? '.'), nodeArgs, env };
}

/** Threads and the anonymous / file-backed split of a process's RSS, from /proc. */
function details(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
    const threads = readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
    return `anon ${kb('RssAnon').toFixed(1)}, file ${kb('RssFile').toFixed(1)} MiB, ${threads.length} threads: ${threads.join(' ')}${smaps(pid)}${diag(pid)}`;
  } catch {
    return '(no /proc)';
  }
}

/** What a preload such as `--import=/tmp/memdiag.mjs` last wrote about the process, if any. */
function diag(pid: number): string {
  try {
    return `\n    ${readFileSync(`/tmp/memdiag-${pid}.json`, 'utf8').replace(/\s+/g, ' ')}`;
  } catch {
    return '';
  }
}

/** With --smaps, the largest mappings by RSS (what is resident, by file or [heap]/anonymous). */
function smaps(pid: number): string {
  if (!process.argv.includes('--smaps')) return '';
  const byName = new Map<string, number>();
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = `${head[2] || '[anon]'} ${head[1]}`;
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) byName.set(name, (byName.get(name) ?? 0) + Number(rss[1]) / 1024);
  }
  const top = [...byName].sort((a, b) => b[1] - a[1]).slice(0, 12);
  return `\n    ${top.map(([n, m]) => `${m.toFixed(1)} ${n}`).join('\n    ')}`;
}

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const upstream = await startBenchUpstream(secret);
const hosts = benchHosts(FULL_PLAN);
const figures = new Map<string, { s2: number[]; s5: number[] }>(
  [...variants.map((v) => v.name), ...(withFloor ? ['floor'] : [])].map((n) => [n, { s2: [], s5: [] }]),
);
const tally: Tally = { badStatus: 0, badBody: 0 };
try {
  for (let run = 1; run <= runs; run++) {
    const children: Array<{ name: string; pid: number; route: Route; stop(): Promise<void> }> = [];
    try {
      for (const v of variants) {
        const options = keywayBenchOptions({
          plan: FULL_PLAN,
          secret,
          hosts,
          oauth: newOAuthClient(),
          tokenUrl: 'https://127.0.0.1:9/unused',
          nodeArgs: v.nodeArgs,
          cli: join(v.dir, 'dist/cli/main.js'),
        });
        const child: KeywayChild = await startKeywayChild(withConfig({ ...options, env: { ...options.env, ...v.env } }, extraConfig));
        children.push({
          name: v.name,
          pid: child.pid,
          route: keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processCpuMs(child.pid)),
          stop: child.stop,
        });
        if (run === 1) console.log(`${v.name}: ${child.runtime()}`);
      }
      if (withFloor) {
        const floor: FloorChild = await startFloorChild({ hosts, secret, upstreamCaPath: TLS_FIXTURES.caPath });
        children.push({ name: 'floor', pid: floor.pid, route: proxyRoute('floor', floor.url, floor.caPem, TLS_FIXTURES.ca, floor.cpuMs), stop: floor.stop });
      }
      const ctx = (): Context => ({ upstreamPort: upstream.port, tally, deadline: performance.now() + 600_000, warmupMs: FULL_PLAN.warmupMs });
      const inRounds = async (run1: (route: Route) => Promise<unknown>) => {
        for (let i = 0; i < roundCount; i++) for (const c of rotate(children, i)) await run1(c.route);
      };
      const rss = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
      await inRounds((r) => s1Sequential(r, ctx(), FULL_PLAN.s1));
      await inRounds((r) => s2Parallel(r, ctx(), FULL_PLAN.s2));
      // --snapshot: a heap snapshot of each child here (run it with --heapsnapshot-signal=SIGUSR2; written in its working folder).
      if (process.argv.includes('--snapshot')) for (const c of children) if (c.name !== 'floor') process.kill(c.pid, 'SIGUSR2');
      for (const c of children) {
        const mib = rss(c.pid);
        figures.get(c.name)?.s2.push(mib);
        console.log(`run ${run} after s2: ${c.name} ${mib.toFixed(1)} MiB (${details(c.pid)})`);
      }
      await inRounds((r) => s3Download(r, ctx(), FULL_PLAN.s3));
      await inRounds((r) => s4Upload(r, ctx(), FULL_PLAN.s4));
      // Printed, not kept: how much of the growth to "after s5" the large bodies left behind.
      for (const c of children) console.log(`run ${run} after s3 and s4: ${c.name} ${rss(c.pid).toFixed(1)} MiB (${details(c.pid)})`);
      await s5NewHosts(
        children.map((c) => c.route),
        ctx(),
        FULL_PLAN.s5,
      );
      for (const c of children) {
        const mib = rss(c.pid);
        figures.get(c.name)?.s5.push(mib);
        console.log(`run ${run} after s5: ${c.name} ${mib.toFixed(1)} MiB (${details(c.pid)})`);
      }
    } finally {
      for (const c of children) await c.stop().catch(() => undefined);
    }
  }
  for (const [name, f] of figures) {
    console.log(
      `${name}: RSS after s2 median ${median(f.s2).toFixed(1)} MiB [${f.s2.map((x) => x.toFixed(1)).join(', ')}], after s5 median ${median(f.s5).toFixed(1)} MiB [${f.s5.map((x) => x.toFixed(1)).join(', ')}]`,
    );
  }
  if (tally.badStatus + tally.badBody > 0) console.log(`bad answers: ${tally.badStatus} status, ${tally.badBody} body (the figures are not valid)`);
} finally {
  await upstream.close();
}
