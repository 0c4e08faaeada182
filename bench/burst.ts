// Short rounds from a fresh start, interleaved: each restart starts every side afresh (keyway build
// A, optionally build or setting B, and squid), in an order that turns each restart, and runs
// bench/burst-rounds.ts on it: s1's first requests, s2's first few thousand, then s2's long round in
// the same process. Prints each round and, per side, the median and the range of every figure, and
// keyway ÷ squid on the burst and on the long round (issue 92; docs/perf/README.md, "Short rounds").
//
//   node bench/burst.ts --a=CHECKOUT [--b=CHECKOUT] [--a-node-args=..] [--b-node-args=..] [--a-env=VAR=v,..]
//       [--b-env=..] [--a-config=JSON] [--b-config=JSON] [--a-src] [--b-src] [--restarts=5] [--no-squid]
//       [--pin] [--quick] [--cpu-prof=DIR] [--spaces]
//
// --a-src / --b-src run that side's src/cli/main.ts instead of its bundle; --cpu-prof=DIR profiles
// each keyway side's burst (written to DIR, summarised); --spaces prints its V8 heap spaces after the
// long round.
//
// --b may be the same checkout as --a with other node options, environment or config: that is how a
// V8 tier or a setting is judged by both readings at once. Each checkout needs a built dist/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { awsHost, newBenchAwsKey } from './aws-host.ts';
import {
  BURST_PLAN,
  type BurstRound,
  type BurstSeries,
  burstFigures,
  burstSeries,
  burstTable,
  cpuUs,
  type FreshProxy,
  perRestartRatio,
  QUICK_BURST_PLAN,
} from './burst-rounds.ts';
import { BENCH_SUFFIX, directRoute, keywayRoute, proxyRoute, type Tally } from './clients.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient, withConfig } from './keyway-bench.ts';
import { type KeywayChild, startKeywayChild } from './keyway-child.ts';
import type { InspectorClient } from './inspector.ts';
import { processTreeCpuMs } from './proc.ts';
import { type CpuProfile, formatProfile, summariseCpuProfile } from './profile.ts';
import { distHasSourceMaps, distSourceMapper } from './profile-map.ts';
import { AWS_HOST, FULL_PLAN } from './scenarios.ts';
import { squidAvailable, squidBinary, squidMissing, startSquidChild } from './squid-child.ts';
import { fixed, median } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

const plan = flag('quick') ? QUICK_BURST_PLAN : BURST_PLAN;
const restarts = Math.min(20, Math.max(1, Number(arg('restarts') ?? 5)));
const sides = (['a', 'b'] as const).filter((s) => arg(s) !== undefined);
if (!sides.includes('a')) {
  console.error('usage: node bench/burst.ts --a=CHECKOUT [--b=CHECKOUT] [--a-node-args=..] [--b-node-args=..] [--restarts=5] [--no-squid] [--pin] [--quick]');
  process.exit(2);
}
const withSquid = !flag('no-squid') && squidAvailable(squidBinary());
if (!flag('no-squid') && !withSquid) console.log(squidMissing());
const pinnedCpu = flag('pin') ? pinThisProcess() : undefined;

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const awsKey = newBenchAwsKey();
const upstream = await startBenchUpstream(secret, undefined, awsHost(AWS_HOST, awsKey));
const hosts = benchHosts(FULL_PLAN);
const tally: Tally = { badStatus: 0, badBody: 0 };
const names = [...sides.map((s) => s.toUpperCase()), ...(withSquid ? ['squid'] : [])];

try {
  const series = await burstSeries(
    names.map((name) => ({ name, start: () => start(name) })),
    restarts,
    { port: upstream.port, direct: directRoute(TLS_FIXTURES.ca, secret) },
    tally,
    plan,
    (restart, name, round) => {
      console.log(
        `restart ${restart + 1} ${name}: s1 p50 ${fixed(round.s1.latencyMs.p50 * 1000, 0)} µs, CPU ${fixed(cpuUs(round.s1), 0)} µs/req;` +
          ` s2 burst CPU ${fixed(cpuUs(round.s2), 0)} µs/req, ${fixed(round.s2.rps, 0)} req/s;` +
          ` s2 long CPU ${fixed(cpuUs(round.long), 0)} µs/req, ${fixed(round.long.rps, 0)} req/s; s1 after p50 ${fixed(round.s1After.latencyMs.p50 * 1000, 0)} µs;` +
          ` RSS ${fixed(round.rssStartMiB, 1)} / ${fixed(round.rssBurstMiB, 1)} / ${fixed(round.rssAfterMiB, 1)} MiB (start / burst / long)`,
      );
      if (round.memoryDetail) console.log(`restart ${restart + 1} ${name} memory after the long round: ${round.memoryDetail}`);
    },
  );
  report(series);
  if (tally.badStatus + tally.badBody > 0) {
    console.log(`bad answers: ${tally.badStatus} status, ${tally.badBody} body, first: ${tally.first} (the figures are not valid)`);
    process.exitCode = 1;
  }
} finally {
  await upstream.close();
}

async function start(name: string): Promise<FreshProxy> {
  if (name === 'squid') {
    const squid = await startSquidChild({ hosts, injectDomains: [BENCH_SUFFIX], secret, upstreamCaPath: TLS_FIXTURES.caPath });
    pin(squid.pid);
    return { route: proxyRoute('squid', squid.url, squid.caPem, TLS_FIXTURES.ca, squid.cpuMs), memory: () => squid.memory(), stop: () => squid.stop() };
  }
  const side = name.toLowerCase();
  const base = keywayBenchOptions({
    plan: FULL_PLAN,
    secret,
    hosts,
    oauth: newOAuthClient(),
    tokenUrl: 'https://127.0.0.1:9/unused',
    nodeArgs: arg(`${side}-node-args`)?.split(',') ?? [],
    // --a-src / --b-src: the unbundled src/cli/main.ts (Node strips its types) instead of the built dist/.
    cli: join(resolve(arg(side) as string), flag(`${side}-src`) ? 'src/cli/main.ts' : 'dist/cli/main.js'),
    aws: awsKey,
  });
  const configText = arg(`${side}-config`);
  let options = configText ? withConfig(base, JSON.parse(configText) as Record<string, Record<string, unknown>>) : base;
  options = { ...options, env: { ...options.env, ...envPairs(arg(`${side}-env`)) } };
  const profileDir = arg('cpu-prof');
  const child = await startKeywayChild({ ...options, inspect: flag('spaces') || profileDir !== undefined });
  pin(child.pid);
  return {
    route: keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processTreeCpuMs(child.pid)),
    memory: () => child.memory(),
    describeMemory: flag('spaces') ? () => heapSpaces(child) : undefined,
    aroundBurst: profileDir === undefined ? undefined : profileBurst(child, resolve(profileDir), name),
    stop: () => child.stop(),
  };
}

function report(series: BurstSeries): void {
  console.log(`\nmedian (range) over ${restarts} fresh starts; s1 direct p50 ${fixed(median(series.directP50Ms) * 1000, 0)} µs`);
  for (const name of names.filter((n) => n !== 'squid')) {
    console.log(`${name}: ${arg(name.toLowerCase())} ${arg(`${name.toLowerCase()}-node-args`) ?? ''} ${arg(`${name.toLowerCase()}-env`) ?? ''}`.trimEnd());
  }
  console.log(burstTable(series, names));
  for (const other of names.filter((n) => n !== 'A' && n !== 'squid')) {
    const versus = (pick: (r: BurstRound) => number) => {
      const r = perRestartRatio(series, other, 'A', pick);
      return `${fixed(r.median, 3)} (${fixed(r.min, 3)}-${fixed(r.max, 3)})`;
    };
    console.log(
      `${other} ÷ A, same restart: s2 first requests CPU ${versus((r) => cpuUs(r.s2))}; long round CPU ${versus((r) => cpuUs(r.long))}; s1 first requests p50 ${versus((r) => r.s1.latencyMs.p50)}; RSS after ${versus((r) => r.rssAfterMiB)}`,
    );
  }
  if (!withSquid) return;
  for (const name of names.filter((n) => n !== 'squid')) {
    const versus = (pick: (r: BurstRound) => number) => {
      const r = perRestartRatio(series, name, 'squid', pick);
      return `${fixed(r.median, 2)}x (${fixed(r.min, 2)}-${fixed(r.max, 2)})`;
    };
    const k = burstFigures(series, name);
    const q = burstFigures(series, 'squid');
    console.log(
      `${name} ÷ squid, same restart: s2 first requests CPU ${versus((r) => cpuUs(r.s2))}; long round CPU ${versus((r) => cpuUs(r.long))}; s1 added over squid's ${fixed((k.s1AddedP50Ms - q.s1AddedP50Ms) * 1000, 0)} µs (after the long round ${fixed((k.s1AfterAddedP50Ms - q.s1AfterAddedP50Ms) * 1000, 0)} µs)`,
    );
  }
}

/** --cpu-prof=DIR: a CPU profile of the burst alone, written to DIR and summarised by area and function. */
function profileBurst(child: KeywayChild, dir: string, name: string): { before(): Promise<void>; after(): Promise<void> } {
  let inspector: InspectorClient | undefined;
  return {
    async before() {
      inspector = await child.inspector();
      await inspector.send('Profiler.enable');
      await inspector.send('Profiler.setSamplingInterval', { interval: 250 });
      await inspector.send('Profiler.start');
    },
    async after() {
      if (!inspector) return;
      const { profile } = await inspector.send<{ profile: CpuProfile }>('Profiler.stop');
      inspector.close();
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `burst-${name}-${Date.now()}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      console.log(formatProfile(summariseCpuProfile(profile, file, 25, distHasSourceMaps() ? distSourceMapper() : undefined)));
    },
  };
}

/** --spaces: the child's V8 heap spaces and memoryUsage, in MiB, read through its inspector. */
async function heapSpaces(child: KeywayChild): Promise<string> {
  const inspector = await child.inspector();
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kinds = ['RssAnon', 'RssFile'].map((k) => `${k} ${fixed(Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1]) / 1024, 1)}`).join(', ');
    return `${kinds}; ${await inspector.evaluate<string>(`(() => {
      const mib = (n) => (n / 1048576).toFixed(1);
      const v8 = process.getBuiltinModule('node:v8');
      const u = process.memoryUsage();
      const spaces = v8.getHeapSpaceStatistics().map((s) => s.space_name.replace('_space', '') + ' ' + mib(s.space_size)).join(', ');
      return 'heap ' + mib(u.heapTotal) + ' (' + spaces + '), external ' + mib(u.external) + ', array buffers ' + mib(u.arrayBuffers);
    })()`)}`;
  } finally {
    inspector.close();
  }
}

function envPairs(text: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text?.split(',') ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

function pin(pid: number): void {
  if (pinnedCpu !== undefined) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(pinnedCpu), String(pid)], { stdio: 'ignore' });
}

/** This process (clients, upstream) on every CPU but the last; the proxies on the last. */
function pinThisProcess(): number {
  const cpus = availableParallelism();
  execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', `0-${Math.max(0, cpus - 2)}`, String(process.pid)], { stdio: 'ignore' });
  return cpus - 1;
}
