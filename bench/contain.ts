// `npm run bench:contain`: what `keyway run --contain` costs against `keyway run` (issue 47: within
// 10% on s1 and s2). One keyway (`keyway start`, a child process) and the bench upstream; the same
// load (bench/contain-client.ts) runs in turns as a process pointed at that keyway by HTTPS_PROXY
// (keyway run), under `keyway run --contain` while it runs (the run's keyway serves the redirected
// connections, joined to the running one through its contain door: secrets and rate buckets), and
// under --contain with no keyway running for the home. Prints each turn, the medians, and ratios to
// `keyway run`, with the CPU per request of the keyway that served (the run's process for
// --contain: its keyway and the namespaces' set-up). Loopback only, bounded in time.
//
//   node bench/contain.ts [--pairs=3] [--seconds=4]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchHosts, keywayBenchOptions, newOAuthClient } from './keyway-bench.ts';
import { startKeywayChild } from './keyway-child.ts';
import { processCpuMs } from './proc.ts';
import { FULL_PLAN, type LatencyResult } from './scenarios.ts';
import { median } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const pairs = Math.min(10, Math.max(1, Number(arg('pairs') ?? 3)));
const seconds = Math.min(20, Math.max(1, Number(arg('seconds') ?? 4)));
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const client = join(root, 'bench', 'contain-client.ts');

interface Turn {
  s1: LatencyResult;
  s2: LatencyResult;
  /** keyway's CPU (and the relay's) per s2 request, in µs, over the whole client run. */
  cpuPerRequestUs: number;
}

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const upstream = await startBenchUpstream(secret);
const keyway = await startKeywayChild(
  keywayBenchOptions({
    plan: FULL_PLAN,
    secret,
    hosts: benchHosts(FULL_PLAN),
    oauth: newOAuthClient(),
    tokenUrl: 'https://127.0.0.1:9/unused',
    nodeArgs: [],
    cli,
  }),
);
// The same home with nothing running for it: --contain then runs a keyway of its own.
const alone = mkdtempSync(join(tmpdir(), 'keyway-bench-alone-'));
cpSync(keyway.home, alone, { recursive: true, filter: (src) => !/\/data\/(running|proxy\.json)|\/logs/.test(src.slice(keyway.home.length)) });

/** Runs the client (under `wrap`), sampling the CPU of keyway and of the wrapping process until it exits. */
async function turn(name: string, command: string[], env: Record<string, string>, home: string, served: 'running' | 'run'): Promise<Turn> {
  const child = spawn(command[0]!, command.slice(1), {
    env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp', KEYWAY_HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const keywayCpu0 = processCpuMs(keyway.pid);
  let wrapperCpu = 0;
  const sample = setInterval(() => {
    try {
      wrapperCpu = processCpuMs(child.pid!);
    } catch {}
  }, 100);
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (exit) => resolve(exit)));
  clearInterval(sample);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${name}: exit ${code}\n${err.slice(-2000)}`);
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as {
    s1: LatencyResult;
    s2: LatencyResult;
    tally: { badStatus: number; badBody: number; first?: string };
  };
  if (result.tally.badStatus + result.tally.badBody > 0) throw new Error(`${name}: bad answers: ${result.tally.first}`);
  // keyway run: the running keyway served. --contain: the run's own process did (its keyway, and
  // the namespaces' set-up); the running keyway only answered the door, counted too.
  const cpuMs = processCpuMs(keyway.pid) - keywayCpu0 + (served === 'run' ? wrapperCpu : 0);
  const requests = result.s1.requests + result.s2.requests;
  return { s1: result.s1, s2: result.s2, cpuPerRequestUs: (cpuMs * 1000) / requests };
}

const node = process.execPath;
const clientArgs = [client, `--port=${upstream.port}`, `--seconds=${seconds}`];
const routes: Record<string, () => Promise<Turn>> = {
  'keyway run': () =>
    turn('keyway run', [node, ...clientArgs, '--route=proxy'], { HTTPS_PROXY: keyway.url, KEYWAY_BENCH_CA: keyway.caPem }, keyway.home, 'running'),
  '--contain (keyway runs)': () =>
    turn('--contain', [node, cli, 'run', '--contain', '--port', String(upstream.port), '--', node, ...clientArgs, '--route=contained'], {}, keyway.home, 'run'),
  '--contain (none runs)': () =>
    turn(
      '--contain alone',
      [node, cli, 'run', '--contain', '--port', String(upstream.port), '--', node, ...clientArgs, '--route=contained'],
      { KEYWAY_MASTER_KEY: keyway.masterKey },
      alone,
      'run',
    ),
};

const figures: Record<string, Turn[]> = Object.fromEntries(Object.keys(routes).map((name) => [name, []]));
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
try {
  for (let i = 0; i < pairs; i++) {
    for (const [name, run] of Object.entries(routes)) {
      const t = await run();
      figures[name]!.push(t);
      console.log(
        `turn ${i + 1} ${name.padEnd(24)} s1 p50 ${fmt(t.s1.latencyMs.p50, 3)} ms p99 ${fmt(t.s1.latencyMs.p99, 3)} ms | s2 ${fmt(t.s2.rps, 0)} req/s p50 ${fmt(t.s2.latencyMs.p50)} ms | CPU ${fmt(t.cpuPerRequestUs, 0)} µs/req`,
      );
    }
  }
  const base = figures['keyway run']!;
  const baseS1 = median(base.map((t) => t.s1.latencyMs.p50));
  const baseS2 = median(base.map((t) => t.s2.rps));
  console.log(`\nmedians of ${pairs} turns (ratio to keyway run)`);
  for (const [name, turns] of Object.entries(figures)) {
    const s1 = median(turns.map((t) => t.s1.latencyMs.p50));
    const s2 = median(turns.map((t) => t.s2.rps));
    console.log(
      `${name.padEnd(24)} s1 p50 ${fmt(s1, 3)} ms (${fmt(s1 / baseS1)}x) | s2 ${fmt(s2, 0)} req/s (${fmt(s2 / baseS2)}x) | CPU ${fmt(median(turns.map((t) => t.cpuPerRequestUs)), 0)} µs/req`,
    );
  }
} finally {
  await keyway.stop();
  await upstream.close();
  rmSync(alone, { recursive: true, force: true });
}
