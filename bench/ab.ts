// A/B of two keyway builds on s2 (64 kept-alive connections, small GETs with a bearer credential
// injected) or s4 (1 MiB uploads, 8 at a time): both run as children at once against the same
// upstream, measured in turns (A, B, B, A, ...), so that drift in the machine's load falls on both
// alike. Prints, for each turn and as medians, req/s and keyway CPU per request (s2) or MiB/s (s4).
// This is how a request-path change is judged here: single runs of one build move ±15% on these
// shared machines.
//
//   node bench/ab.ts --a=/path/to/checkout-a --b=/path/to/checkout-b [--scenario=s1|s2|s4|s5|s8|s10] [--pairs=5] [--seconds=4] [--restarts=1] [--pin] [--no-warmup]
//
// --restarts=N starts both children afresh N times (B's first every other time) and prints B ÷ A per
// restart and their geometric mean. Use it: two keyway processes of the same build, measured in turns,
// differ by up to ±25% in CPU per request for as long as they live (same build both sides, runs of
// 6 to 10 pairs: B ÷ A 0.96, 0.75, 1.15, 0.93; in the 0.75 run all 8 pairs below 1), so the turns of one
// pair of processes cannot tell a 5% or even a 20% change from that process's luck.
// --pin puts the keyway children on the last CPU and this process (the clients and the upstream)
// on the others: the luck was mostly where the scheduler put keyway beside the load (pinned, five
// restarts of the same build read 0.79-1.00, against 0.73-1.13 unpinned, and every turn cheaper).
// Each side gets one uncounted warm-up turn per restart first (--no-warmup: none).
//
// s5 is the first request to each of 200 new host names (CONNECT, a leaf minted, a TLS context, a
// new upstream connection), A and B alternating host by host (each host is new to both); --pairs
// and --seconds do not apply. Prints ms per new host (mean, p50) and keyway CPU per new host.
//
// s1 is small GETs one after another on one kept-alive connection (at most 2,000 or --seconds a
// turn): B ÷ A is of the p50 latency, and each turn prints keyway's CPU per request too.
//
// s8 is s2's load on the aws_sigv4 grant (each GET signed by keyway, checked by the upstream), and
// s10 s2's load as tools/call POSTs to the bench grant's MCP endpoint (bench/mcp.ts).
//
//   node bench/ab.ts --scenario=s2m --a=CHECKOUT [--stream] [--budget] [--sides=none,metered] [--cpu-prof=DIR] [--gc] [--pairs=6] [--seconds=4]
//
// s2m is not two builds but one, A/B by grant in one keyway process: s2's load as small POSTs to
// Anthropic's /v1/messages on a grant with model_api: none against one with model_api: anthropic
// (metered), and with --budget one under a usd budget too; --stream for SSE answers
// (bench/model-api.ts, bench/model-ab.ts, docs/perf/spend.md). --sides and --cpu-prof profile one
// side alone; --gc counts each side's garbage collections (bench/gc-sides.ts).
//
// --b-held: side B holds 16 captured logins (bench/held.ts, as the full run's held-values section),
// so --a=. --b=. --b-held is what holding them costs. --held: both sides hold them (two builds
// compared on the held-values path).
//
// keyway's CPU is its whole process tree's: with --a-config='{"proxy":{"workers":2}}' the primary and
// its workers together.
//
// --a-config=JSON / --b-config=JSON: config sections merged into that side's keyway.yaml (a section
// given replaces its keys, not the whole section), so one build can be A/B'd with a setting on and
// off: --a=. --b=. --b-config='{"audit":{"write_ahead":false}}'. --a-node-args / --b-node-args: node
// options, comma-separated, given after keyway's own (PROXY_NODE_FLAGS), so they win:
// --b-node-args=--max-semi-space-size=16. --a-env / --b-env: VAR=value pairs for that side's
// environment, which win over keyway's own (src/cli/proxy-runtime.ts PROXY_ENV):
// --b-env=MALLOC_MMAP_THRESHOLD_=16384.
//
// Each path is a checkout with a built dist/ (npm run build). No squid, no floor: use npm run bench
// for the figures against peers.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { keywayRoute, type Tally } from './clients.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient, withConfig } from './keyway-bench.ts';
import { startKeywayChild, type KeywayChild } from './keyway-child.ts';
import { processTreeCpuMs } from './proc.ts';
import { rpcLoad } from './mcp.ts';
import { modelAb } from './model-ab.ts';
import { MODEL_GRANTS, type ModelSide } from './model-api.ts';
import { awsHost, newBenchAwsKey } from './aws-host.ts';
import { AWS_HOST, FULL_PLAN as PLAN, MAIN_HOST, s1Sequential, s2Parallel, s4Upload, s5NewHosts, type Context, type NewHostResult } from './scenarios.ts';
import { geometricMean, median } from './stats.ts';
import { type LoginEndpoint, logInThrough, startLoginEndpoint, withCaptureGrant } from './held.ts';
import { startBenchUpstream } from './upstream.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const flag = (name: string): boolean => process.argv.includes(`--${name}`);
const builds = { A: arg('a'), B: arg('b') };
const configs = { A: configArg('a-config'), B: configArg('b-config') };
const nodeArgs = { A: arg('a-node-args')?.split(',') ?? [], B: arg('b-node-args')?.split(',') ?? [] };
const envs = { A: envArg('a-env'), B: envArg('b-env') };
/** --a-env / --b-env: VAR=value pairs, comma-separated, for that side's environment (over keyway's own PROXY_ENV). */
function envArg(name: string): Record<string, string> {
  const pairs = arg(name)?.split(',') ?? [];
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      console.error(`--${name} is VAR=value[,VAR=value...], e.g. MALLOC_MMAP_THRESHOLD_=16384`);
      process.exit(2);
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
/** --a-config / --b-config: a JSON object of config sections, or exit with a usage line. */
function configArg(name: string): Record<string, Record<string, unknown>> {
  const text = arg(name);
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    const sections = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? Object.values(parsed) : [undefined];
    if (sections.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v))) return parsed as Record<string, Record<string, unknown>>;
  } catch {
    // reported below
  }
  console.error(`--${name} is a JSON object of config sections, e.g. '{"audit":{"write_ahead":false}}'`);
  process.exit(2);
}
// s2m with --keep takes many short rounds (its turns carry no handshakes): up to 200 of them.
const pairs = Math.min(arg('scenario') === 's2m' && flag('keep') ? 200 : 20, Math.max(1, Number(arg('pairs') ?? 5)));
const seconds = Math.min(30, Math.max(1, Number(arg('seconds') ?? 4)));
const restarts = Math.min(20, Math.max(1, Number(arg('restarts') ?? 1)));
const warmup = !flag('no-warmup');
/** --pin: keyway's children on the last CPU, this process (clients and upstream) on the others. */
const pinnedCpu = flag('pin') ? pinThisProcess() : undefined;
const scenario = arg('scenario') ?? 's2';
if (scenario === 's2m') {
  // One build, A/B by grant in one process (bench/model-ab.ts).
  if (!builds.A || builds.B) {
    console.error(
      'usage: node bench/ab.ts --scenario=s2m --a=CHECKOUT [--stream] [--budget] [--sides=none,metered] [--cpu-prof=DIR] [--gc] [--pairs=6] [--seconds=4] [--pin] [--keep]',
    );
    process.exit(2);
  }
  const sides = arg('sides')?.split(',') as ModelSide[] | undefined;
  if (sides?.some((s) => !(s in MODEL_GRANTS))) {
    console.error('--sides is a list of none, metered and budget');
    process.exit(2);
  }
  const ok = await modelAb({
    dir: builds.A,
    pairs,
    seconds,
    stream: flag('stream'),
    budget: flag('budget'),
    sides,
    profileDir: arg('cpu-prof'),
    pinnedCpu,
    keep: flag('keep'),
    nodeArgs: nodeArgs.A,
    gc: flag('gc'),
  });
  process.exit(ok ? 0 : 1);
}
if (!builds.A || !builds.B) {
  console.error('usage: node bench/ab.ts --a=CHECKOUT --b=CHECKOUT [--pairs=5] [--seconds=4]');
  process.exit(2);
}
if (scenario !== 's1' && scenario !== 's2' && scenario !== 's4' && scenario !== 's5' && scenario !== 's8' && scenario !== 's10') {
  console.error('--scenario is s1, s2, s4, s5, s8, s10 or s2m');
  process.exit(2);
}

const secret = `kwb-${randomBytes(24).toString('hex')}`;
/** --held / --b-held: the login endpoint the captured logins come from (bench/held.ts). */
let loginEndpoint: LoginEndpoint | undefined;
// s8's aws_sigv4 grant: the upstream checks keyway's signature with the same key.
const awsKey = newBenchAwsKey();
const upstream = await startBenchUpstream(secret, undefined, awsHost(AWS_HOST, awsKey));
const hosts = benchHosts(PLAN);
const tally: Tally = { badStatus: 0, badBody: 0 };
const s2 = { connections: 64, bounds: { maxCount: 200_000, maxMs: seconds * 1000 } };
const s1 = { bounds: { maxCount: 2000, maxMs: seconds * 1000 } };
const s4 = { concurrency: 8, bounds: { maxCount: 10_000, maxMs: seconds * 1000 } };
const figures: Record<string, Array<{ rps: number; cpuPerReqMs: number; p50?: number }>> = { A: [], B: [] };
const mibs: Record<string, number[]> = { A: [], B: [] };
/** Per restart, the geometric mean of its pairs' B ÷ A (CPU per request, or MiB/s for s4). */
const restartRatios: number[] = [];
try {
  for (let restart = 0; restart < (scenario === 's5' ? 1 : restarts); restart++) {
    if (restarts > 1) console.log(`restart ${restart + 1} of ${restarts}: fresh children, ${restart % 2 === 0 ? 'A' : 'B'} started first`);
    const children: KeywayChild[] = [];
    try {
      const routes = await startSides(children, restart % 2 === 1);
      if (scenario === 's5') {
        await newHostAb(routes, tally);
        process.exitCode = tally.badStatus + tally.badBody > 0 ? 1 : 0;
        break;
      }
      const ratios: number[] = [];
      // One turn each first, not counted: a fresh process's first turn runs cold (JIT, caches,
      // the load generator's own warm-up) and cost 10-40% more than its later turns here.
      for (let i = warmup ? -1 : 0; i < pairs; i++) {
        const counted = i >= 0;
        const turn: Record<string, number> = {};
        for (const { name, route } of i % 2 === 0 ? routes : [...routes].reverse()) {
          const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 120_000, warmupMs: 1000 };
          const label = counted ? `turn ${i + 1}` : 'warm-up turn (not counted)';
          if (scenario === 's4') {
            const r = await s4Upload(route, ctx, s4);
            if (counted) mibs[name]?.push(r.mibPerSecond);
            turn[name] = r.mibPerSecond;
            console.log(`${name} ${label}: ${r.mibPerSecond.toFixed(1)} MiB/s (${r.transfers} uploads of 1 MiB)`);
            continue;
          }
          if (scenario === 's1') {
            const r = await s1Sequential(route, ctx, s1);
            const cpuPerReqMs = (r.cpuMs ?? Number.NaN) / r.requests;
            if (counted) figures[name]?.push({ rps: r.rps, cpuPerReqMs, p50: r.latencyMs.p50 });
            turn[name] = r.latencyMs.p50;
            console.log(
              `${name} ${label}: p50 ${(r.latencyMs.p50 * 1000).toFixed(0)} µs, p99 ${(r.latencyMs.p99 * 1000).toFixed(0)} µs, keyway CPU ${(cpuPerReqMs * 1000).toFixed(0)} µs/request (${r.requests} requests)`,
            );
            continue;
          }
          const r = await s2Parallel(route, ctx, s2, scenario === 's8' ? AWS_HOST : MAIN_HOST, scenario === 's10' ? rpcLoad(route, ctx, 'mcp') : undefined);
          const cpuPerReqMs = (r.cpuMs ?? Number.NaN) / r.requests;
          if (counted) figures[name]?.push({ rps: r.rps, cpuPerReqMs });
          turn[name] = cpuPerReqMs;
          console.log(
            `${name} ${label}: ${r.rps.toFixed(0)} req/s, keyway CPU ${(cpuPerReqMs * 1000).toFixed(0)} µs/request, p50 ${r.latencyMs.p50.toFixed(2)} ms`,
          );
        }
        if (counted && turn['A'] && turn['B']) ratios.push(turn['B'] / turn['A']);
      }
      const ratio = geometricMean(ratios);
      restartRatios.push(ratio);
      if (restarts > 1) console.log(`restart ${restart + 1}: B ÷ A ${ratio.toFixed(3)} (geometric mean of ${ratios.length} pairs)`);
    } finally {
      for (const c of children) await c.stop().catch(() => undefined);
    }
  }
  for (const [name, list] of Object.entries(scenario === 's4' || scenario === 's5' ? {} : figures)) {
    console.log(
      `${name} median: ${median(list.map((f) => f.rps)).toFixed(0)} req/s, ${(median(list.map((f) => f.cpuPerReqMs)) * 1000).toFixed(0)} µs CPU/request${scenario === 's1' ? `, p50 ${(median(list.map((f) => f.p50 ?? Number.NaN)) * 1000).toFixed(0)} µs` : ''} (${builds[name as 'A' | 'B']})`,
    );
  }
  for (const [name, list] of Object.entries(scenario === 's4' ? mibs : {})) {
    console.log(`${name} median: ${median(list).toFixed(1)} MiB/s up (${builds[name as 'A' | 'B']})`);
  }
  if (restartRatios.length > 0) {
    const what = scenario === 's4' ? 'MiB/s' : scenario === 's1' ? 'p50 latency' : 'CPU per request';
    console.log(
      `B ÷ A, ${what}: ${geometricMean(restartRatios).toFixed(3)} (geometric mean over ${restartRatios.length} restart${restartRatios.length === 1 ? '' : 's'}: ${restartRatios.map((r) => r.toFixed(3)).join(', ')})`,
    );
  }
  if (tally.badStatus + tally.badBody > 0) console.log(`bad answers: ${tally.badStatus} status, ${tally.badBody} body (the figures are not valid)`);
} finally {
  await upstream.close();
  await loginEndpoint?.close();
}

/** Starts A's and B's keyway children (B's first when asked), each with its own home; their routes, A first. */
async function startSides(children: KeywayChild[], bFirst: boolean): Promise<Array<{ name: string; route: ReturnType<typeof keywayRoute> }>> {
  const routes: Array<{ name: string; route: ReturnType<typeof keywayRoute> }> = [];
  const order = Object.entries(builds);
  for (const [name, dir] of bFirst ? [...order].reverse() : order) {
    const setup = {
      plan: PLAN,
      secret,
      hosts,
      oauth: newOAuthClient(),
      tokenUrl: 'https://127.0.0.1:9/unused',
      nodeArgs: nodeArgs[name as 'A' | 'B'],
      cli: join(resolve(dir as string), 'dist/cli/main.js'),
      aws: awsKey,
    };
    let options = withConfig(keywayBenchOptions(setup), configs[name as 'A' | 'B']);
    options = { ...options, env: { ...options.env, ...envs[name as 'A' | 'B'] } };
    const holding = flag('held') || (name === 'B' && flag('b-held'));
    if (holding) {
      loginEndpoint ??= await startLoginEndpoint();
      options = withCaptureGrant(options, loginEndpoint);
    }
    const child = await startKeywayChild(options);
    children.push(child);
    if (holding) await logInThrough(child.url, loginEndpoint!);
    console.log(`side ${name}: pid ${child.pid}`);
    if (pinnedCpu !== undefined) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(pinnedCpu), String(child.pid)], { stdio: 'ignore' });
    routes.push({ name, route: keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processTreeCpuMs(child.pid)) });
  }
  return routes.sort((x, y) => x.name.localeCompare(y.name));
}

/**
 * Puts this process on every CPU but the last (taskset, Linux) and returns the last, for the
 * children. Exits with a reason when it cannot: fewer than 2 CPUs, or no taskset.
 */
function pinThisProcess(): number {
  const cpus = availableParallelism();
  if (cpus < 2) {
    console.error('--pin needs 2 CPUs or more');
    process.exit(2);
  }
  try {
    execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', `0-${cpus - 2}`, String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.error('--pin needs taskset (util-linux)');
    process.exit(2);
  }
  return cpus - 1;
}

/**
 * s5 for two builds: s5NewHosts alternates its routes host by host, so A and B each meet all 200 hosts
 * new, in the same minutes. It keys its results by route name, so B's route is named 'floor' there.
 */
async function newHostAb(routes: Array<{ name: string; route: ReturnType<typeof keywayRoute> }>, tally: Tally): Promise<void> {
  const [a, b] = routes as [(typeof routes)[0], (typeof routes)[0]];
  const bRoute = { ...b.route, name: 'floor' as const };
  const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 120_000, warmupMs: 0 };
  const cpuBefore = [a.route.cpuMs?.() ?? 0, b.route.cpuMs?.() ?? 0];
  const result = await s5NewHosts([a.route, bRoute], ctx, PLAN.s5);
  const cpu = [(a.route.cpuMs?.() ?? 0) - (cpuBefore[0] ?? 0), (b.route.cpuMs?.() ?? 0) - (cpuBefore[1] ?? 0)];
  const sides: Array<[string, NewHostResult | undefined, number]> = [
    ['A', result.keyway, cpu[0] ?? 0],
    ['B', result.floor, cpu[1] ?? 0],
  ];
  for (const [name, r, cpuMs] of sides) {
    if (!r) continue;
    console.log(
      `${name}: ${r.hosts} new hosts, ${r.msPerHost.toFixed(2)} ms per host (p50 ${r.latencyMs.p50.toFixed(2)}), keyway CPU ${(cpuMs / Math.max(1, r.hosts)).toFixed(2)} ms per host (${builds[name as 'A' | 'B']})`,
    );
  }
}
