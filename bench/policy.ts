// What Cedar policies cost keyway per request, and in memory (issue 88). s2's load (64 kept-alive
// connections, small GETs on the bench grant) through four keyway children of one build, in turns
// that rotate each round so that drift in the machine's load touches every side alike:
//
//   none       no Cedar file: the engine is never loaded (the YAML rules alone, as before)
//   10         10 forbids that every request is judged against (none matches the load)
//   500        500 such forbids: the worst case, every policy in every request's slice
//   500/10     500 forbids of which 490 name other agents: the slice is 10, as with `10`
//
// Before the rounds each Cedar side is shown to be live: a probe path one of its forbids names gets
// 403 rule_denied (a side whose policies did nothing would make the figures meaningless). Prints each
// turn, the medians, each side ÷ none per round, and RSS after the rounds. Not a test: figures depend
// on the machine; docs/perf/policy.md keeps the published ones with their date and commit.
//
//   npm run build && node bench/policy.ts [--pairs=6] [--seconds=4] [--dir=CHECKOUT] [--pin]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { keywayRoute, type Route, type Tally } from './clients.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient } from './keyway-bench.ts';
import { type KeywayChild, startKeywayChild } from './keyway-child.ts';
import { processCpuMs } from './proc.ts';
import { type Context, FULL_PLAN as PLAN, MAIN_HOST, rotate, s2Parallel } from './scenarios.ts';
import { geometricInterval, median } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const PAIRS = Number(arg('pairs') ?? 6);
const SECONDS = Number(arg('seconds') ?? 4);
const DIR = resolve(arg('dir') ?? '.');
const PIN = process.argv.includes('--pin');
const WARMUP_MS = 3000;
/** A path one forbid of each Cedar side names: the probe that shows the side's policies are live. */
const PROBE_PATH = '/keyway-bench-forbidden';

type Side = 'none' | '10' | '500' | '500/10';
const SIDES: readonly Side[] = ['none', '10', '500', '500/10'];

/** `count` forbids; the first `otherAgents` of them name an agent that never calls (sliced away). */
function forbids(count: number, otherAgents: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const principal = i < otherAgents ? `principal == Agent::"bench-other-${i}"` : 'principal';
    // The last one names the probe path; the others a path the load never asks.
    const path = i === count - 1 ? PROBE_PATH : `/never-${i}/*`;
    out.push(`@id("bench-${i}")\nforbid (${principal}, action, resource) when { context.path like "${path}" };`);
  }
  return `${out.join('\n\n')}\n`;
}

interface Turn {
  rps: number;
  cpuUsPerRequest: number;
  p50: number;
}

async function probe(route: Route, port: number): Promise<string> {
  const dispatcher = route.dispatcher(1);
  try {
    const res = await request(`https://${MAIN_HOST}:${port}${PROBE_PATH}`, { dispatcher, headers: route.headers() });
    await res.body.dump();
    return `${res.statusCode} ${String(res.headers['x-keyway-error'] ?? '')}`.trim();
  } finally {
    await dispatcher.close().catch(() => dispatcher.destroy());
  }
}

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const upstream = await startBenchUpstream(secret);
const children = new Map<Side, { child: KeywayChild; route: Route }>();
let ok = true;
try {
  const texts: Record<Exclude<Side, 'none'>, string> = { '10': forbids(10, 0), '500': forbids(500, 0), '500/10': forbids(500, 490) };
  const base = keywayBenchOptions({
    plan: PLAN,
    secret,
    hosts: benchHosts(PLAN),
    oauth: newOAuthClient(),
    tokenUrl: 'https://127.0.0.1:9/unused',
    nodeArgs: [],
    cli: join(DIR, 'dist/cli/main.js'),
  });
  for (const side of SIDES) {
    // A Cedar file must be in keyway's home: the side's own, in its policies/ folder.
    const child = await startKeywayChild(side === 'none' ? base : { ...base, homeFiles: { 'policies/bench.cedar': texts[side] } });
    const pid = child.pid;
    if (PIN) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(cpus().length - 1), String(pid)], { stdio: 'ignore' });
    children.set(side, { child, route: keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processCpuMs(pid)) });
  }
  if (PIN) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', `0-${Math.max(0, cpus().length - 2)}`, String(process.pid)], { stdio: 'ignore' });
  const rssBefore = new Map(SIDES.map((side) => [side, children.get(side)!.child.memory().rssMiB]));
  for (const side of SIDES) {
    const seen = await probe(children.get(side)!.route, upstream.port);
    // Without Cedar files the probe goes upstream, which knows no such path.
    const want = side === 'none' ? '404' : '403 rule_denied';
    console.log(`probe ${side.padEnd(6)}: ${seen} (want ${want})`);
    if (seen !== want) ok = false;
  }
  if (!ok) throw new Error('a side did not answer the probe as its policies say: the figures would mean nothing');

  const tally: Tally = { badStatus: 0, badBody: 0 };
  const plan = { connections: PLAN.s2.connections, bounds: { maxCount: 200_000, maxMs: SECONDS * 1000 } };
  const run = (side: Side, load = plan) => {
    const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 120_000, warmupMs: 1000 };
    return s2Parallel(children.get(side)!.route, ctx, load);
  };
  console.log(`s2 through keyway, sides ${SIDES.join(', ')}; ${PAIRS} rounds of ${SECONDS} s${PIN ? ', keyway pinned to the last CPU' : ''}; load ${load()}`);
  for (const side of SIDES) await run(side, { ...plan, bounds: { maxCount: 200_000, maxMs: WARMUP_MS } });
  const turns: Array<Partial<Record<Side, Turn>>> = [];
  for (let i = 0; i < PAIRS; i++) {
    const round: Partial<Record<Side, Turn>> = {};
    for (const side of rotate(SIDES, i)) {
      const r = await run(side);
      round[side] = { rps: r.rps, cpuUsPerRequest: ((r.cpuMs ?? Number.NaN) / r.requests) * 1000, p50: r.latencyMs.p50 };
      console.log(
        `${side.padEnd(6)} turn ${i + 1}: ${r.rps.toFixed(0)} req/s, keyway CPU ${round[side]!.cpuUsPerRequest.toFixed(0)} µs/request, p50 ${r.latencyMs.p50.toFixed(2)} ms`,
      );
    }
    turns.push(round);
  }
  console.log(`load at the end ${load()}`);
  for (const side of SIDES) {
    const list = turns.map((t) => t[side]!);
    const rss = children.get(side)!.child.memory();
    console.log(
      `${side.padEnd(6)} median: ${median(list.map((t) => t.rps)).toFixed(0)} req/s, ${median(list.map((t) => t.cpuUsPerRequest)).toFixed(0)} µs CPU/request, ` +
        `p50 ${median(list.map((t) => t.p50)).toFixed(2)} ms; RSS ${rssBefore.get(side)!.toFixed(1)} MiB at start, ${rss.rssMiB.toFixed(1)} MiB after (peak ${rss.peakMiB.toFixed(1)})`,
    );
  }
  for (const side of SIDES.filter((s) => s !== 'none')) {
    const cpu = turns.map((t) => t[side]!.cpuUsPerRequest / t.none!.cpuUsPerRequest);
    const added = turns.map((t) => t[side]!.cpuUsPerRequest - t.none!.cpuUsPerRequest);
    const { mean, low, high } = geometricInterval(cpu);
    console.log(
      `${side.padEnd(6)} ÷ none, CPU/request: ${mean.toFixed(3)}x (95% interval ${low.toFixed(3)}-${high.toFixed(3)}; per round ${cpu.map((x) => x.toFixed(3)).join(' ')}); ` +
        `added ${median(added).toFixed(0)} µs/request (median of rounds)`,
    );
  }
  if (tally.badStatus + tally.badBody > 0) {
    ok = false;
    console.log(`bad answers: ${tally.badStatus} status, ${tally.badBody} body (first: ${tally.first}); the figures are not valid`);
  }
} catch (err) {
  ok = false;
  console.error((err as Error).message);
  for (const [side, { child }] of children) console.error(`--- ${side}:\n${child.output()}`);
} finally {
  for (const { child } of children.values()) await child.stop().catch(() => undefined);
  await upstream.close();
}
process.exitCode = ok ? 0 : 1;

function load(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}
