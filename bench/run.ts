// keyway benchmark: `npm run bench` (full, a few minutes) or `npm run bench -- --quick` (smoke run);
// the options are in run-options.ts. Results also go to bench/results/latest.json (git-ignored).
//
// One process holds the clients (undici; node:http2 for s7) and the HTTPS upstreams; keyway, squid
// and the bare forwarder each run in a child process so their CPU and memory can be read on their
// own. s1-s4 run direct, through keyway and through each peer, round-robin (each round starts one
// route later, so drift in the machine's load hits all alike), and the figures are medians over the
// rounds; s5 goes host by host across the routes. s6 (refresh under load) runs once through keyway
// against a local token endpoint and is compared with s2; s7 (HTTP/2) is keyway against direct only.
// s8 and s9 (signed.ts) run s2's and s4's loads through keyway on an aws_sigv4 grant, each round
// paired with the same load on the bearer grant, for what signing costs.
// A MISS is reported, not fatal: the exit code is non-zero only if something errored.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { awsHost, newBenchAwsKey } from './aws-host.ts';
import { BENCH_SUFFIX, directRoute, keywayRoute, proxyRoute, type Route, type Tally } from './clients.ts';
import { directH2, keywayH2, s7Rounds, s7Streams, startH2Upstream, type H2Upstream } from './h2.ts';
import { startKeywayChild, type KeywayChild } from './keyway-child.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient } from './keyway-bench.ts';
import { tuningEnv } from './keyway-child.ts';
import { startPeers, type Peers } from './peers.ts';
import { processCpuMs, processTree, processTreeCpuMs, processTreeMemory } from './proc.ts';
import { referenceMarkdown, referenceRows } from './reference.ts';
import { peerFiguresOf, storedGuardLines } from './baseline-figures.ts';
import { type BaselineBuild, baselineChanges, baselineRounds, baselineTable, checkoutBaseline, heldTable, readBaseline } from './baseline.ts';
import { HELD_LOGINS, logInThrough, startLoginEndpoint, withCaptureGrant } from './held.ts';
import { type ScalingFigures, type ScalingRounds, type ScalingRoute, s11Scaling, scalingFigures, scalingTable, scalingTargetLines } from './scaling.ts';
import { startSquidChild, type SquidChild } from './squid-child.ts';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.ts';
import { formatProfile, latestProfile, summariseProfile, type ProfileReport } from './profile.ts';
import { distHasSourceMaps, distSourceMapper } from './profile-map.ts';
import { profileMarkdown, profileSummary } from './profile-report.ts';
import { ScenarioProfiler } from './scenario-profiler.ts';
import { latencyFigures, newHostFigures, throughputFigures } from './report.ts';
import { refreshFigures, refreshTable } from './report-refresh.ts';
import { PEER_NOTES, latencyTable, newHostTable, throughputTable } from './report-tables.ts';
import { awsHostLine, signedGetFigures, signedGetTable, signedUploadFigures, signedUploadTable } from './report-signed.ts';
import { directTargetLines, signedTargetLines, squidTargetLines, summaryTable, type RssReadings } from './report-targets.ts';
import { builtCli, parseRunOptions, type RunOptions, USAGE } from './run-options.ts';
import { MemoryLog } from './memory-log.ts';
import { BURST_PLAN, type BurstSeries, burstFigures, burstSeries, burstTable, QUICK_BURST_PLAN } from './burst-rounds.ts';
import { keywayFresh, shortBaselineLine, shortRounds, shortRoundTargetLines, squidFresh } from './short-rounds.ts';
import {
  AWS_HOST,
  FULL_PLAN,
  MAIN_HOST,
  OAUTH_HOST,
  QUICK_PLAN,
  rounds,
  s1Sequential,
  s2Parallel,
  s3Download,
  s4Upload,
  s5NewHosts,
  s6RefreshUnderLoad,
  type Context,
  type Plan,
} from './scenarios.ts';
import { s8SignedGets, s9SignedUploads } from './signed.ts';
import { MCP_PATH, mcpFigures, mcpTable, mcpTargetLines, s10McpCalls } from './mcp.ts';
import { type Bounds, fixed } from './stats.ts';
import { startTokenEndpoint, type BenchTokenEndpoint } from './token-endpoint.ts';
import { startBenchUpstream, type BenchUpstream } from './upstream.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));
const parsed = parseRunOptions(process.argv.slice(2));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
if ('error' in parsed) {
  console.error(`${parsed.error}\n${USAGE}`);
  process.exit(2);
}
const options: RunOptions = parsed;
const { quick, cpuProf, nodeArgs: childNodeArgs, postgres: onPostgres } = options;
// --profile and --cpu-prof map samples in dist/'s chunks back to src/ files: the build is redone with source maps.
if ((options.profile || cpuProf) && options.dist && !distHasSourceMaps()) {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], {
    env: { ...process.env, KEYWAY_BUNDLE_SOURCEMAP: '1' },
    stdio: 'inherit',
  });
}
const childCli = options.dist ? builtCli() : undefined;
const basePlan: Plan = quick ? QUICK_PLAN : FULL_PLAN;
const plan: Plan = { ...basePlan, rounds: options.rounds ?? basePlan.rounds, warmupMs: options.warmupMs ?? basePlan.warmupMs };
// Against the baseline by default in a full run; --baseline=REF picks another build, --no-baseline none.
const stored = readBaseline();
const baselineRef = options.baseline === false ? undefined : (options.baseline ?? (quick ? undefined : stored?.ref));
const routeCount = 2 + (options.squid ? 1 : 0) + (options.floor ? 1 : 0);
// No loop starts a request after the budget; the watchdog ends a run that hangs anyway. The budget
// grows with what the run does: s1-s4 and s7 per route and round (warm-up + timed loop), s8 and s9
// twice per round (bearer and SigV4 grant), plus s5 and s6.
const perRun = (b: { maxMs: number }) => plan.warmupMs + b.maxMs + 1000;
const BUDGET_MS =
  plan.rounds *
    (routeCount * (perRun(plan.s1.bounds) + perRun(plan.s2.bounds) + perRun(plan.s3.bounds) + perRun(plan.s4.bounds)) +
      2 * (perRun(plan.s7.bounds) + perRun(plan.s8.bounds) + perRun(plan.s9.bounds) + perRun(plan.s10.bounds))) +
  plan.s5.maxMs +
  plan.s6.bounds.maxMs +
  // s11: direct, keyway and squid at 1 and N workers, and starting the two N-worker proxies.
  (options.scaling ? plan.rounds * 5 * perRun(plan.s2.bounds) + 40_000 : 0) +
  // The baseline: s2, s8 and s10 on this build and the baseline's, and building it.
  (baselineRef !== undefined ? plan.rounds * 6 * perRun(plan.s2.bounds) + 180_000 : 0) +
  // Held values: s2, s8 and s10 on two keyways of this build, and the logins before.
  plan.rounds * 6 * perRun(plan.s2.bounds) +
  // Short rounds (keyway and squid, then this build and the baseline's): a fresh start and ~10 s each.
  plan.rounds * (baselineRef !== undefined ? 4 : 2) * 25_000 +
  60_000 +
  30_000;
const WATCHDOG_MS = BUDGET_MS + 60_000;

const log = (text = '') => process.stdout.write(`${text}\n`);
const section = (title: string) => log(`\n== ${title}`);

let child: KeywayChild | undefined;
let upstream: BenchUpstream | undefined;
let tokenEndpoint: BenchTokenEndpoint | undefined;
let h2Upstream: H2Upstream | undefined;
let peers: Peers | undefined;
let database: TestPostgres | undefined;
/** s11's proxies with N workers. */
let keywayWorkers: KeywayChild | undefined;
let squidWorkers: SquidChild | undefined;
/** The squid of a short round, while it runs. */
let shortSquid: SquidChild | undefined;
/** The keyway holding captured logins (held values), while it runs. */
let heldChild: KeywayChild | undefined;
/** --profile: the inspector sessions on keyway and the floor. */
let scenarioProfiler: ScenarioProfiler | undefined;
/** The baseline build and its keyway. */
let baselineBuild: BaselineBuild | undefined;
let baselineChild: KeywayChild | undefined;
/** A fresh child of this build for the interleaved comparisons (baseline, held values): like against like. */
let freshChild: KeywayChild | undefined;

const killWorkers = () => {
  for (const pid of keywayWorkers ? processTree(keywayWorkers.pid) : []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  squidWorkers?.killNow();
  shortSquid?.killNow();
};
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${WATCHDOG_MS / 1000} s; giving up\n`);
  killWorkers();
  if (child) process.kill(child.pid, 'SIGKILL');
  peers?.killNow();
  process.exit(3);
}, WATCHDOG_MS);
watchdog.unref();
process.once('SIGINT', () => {
  killWorkers();
  if (child) process.kill(child.pid, 'SIGKILL');
  peers?.killNow();
  process.exit(130);
});

async function main(): Promise<number> {
  const started = performance.now();
  const loadAtStart = loadavg();
  const secret = `kwb-${randomBytes(24).toString('hex')}`;
  const tally: Tally = { badStatus: 0, badBody: 0 };
  const profileDir = cpuProf ? `${RESULTS_DIR}profile-${Date.now()}` : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  // s6: an oauth2 grant on its own host, refreshed at a local token endpoint that rotates tokens.
  const oauth = newOAuthClient();
  tokenEndpoint = await startTokenEndpoint({
    clientId: oauth.id,
    clientSecret: oauth.secret,
    initialRefreshToken: oauth.seedRefreshToken,
    lifetimeS: plan.s6.tokenLifetimeS,
  });
  // s8/s9: an aws_sigv4 grant on its own host, whose requests the upstream checks for keyway's signature.
  const awsKey = newBenchAwsKey();
  const aws = awsHost(AWS_HOST, awsKey);
  upstream = await startBenchUpstream(secret, { host: OAUTH_HOST, check: tokenEndpoint.check }, aws);
  const hosts = benchHosts(plan);
  if (onPostgres) database = await startPostgres();
  const setup = {
    plan,
    secret,
    hosts,
    oauth,
    tokenUrl: tokenEndpoint.url,
    database,
    profileDir,
    inspect: options.profile,
    nodeArgs: childNodeArgs,
    cli: childCli,
    aws: awsKey,
  };
  child = await startKeywayChild(keywayBenchOptions(setup));
  const keywayPid = child.pid;
  const keyway = keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processCpuMs(keywayPid));
  /** A child of `cli` on its own home, as the interleaved comparisons start them: its token endpoint never called (no s6 there), no profile. */
  const freshOptions = (cli: typeof setup.cli) =>
    keywayBenchOptions({
      ...setup,
      cli,
      oauth: newOAuthClient(),
      tokenUrl: 'https://127.0.0.1:9/unused',
      database: undefined,
      profileDir: undefined,
      inspect: false,
    });
  const startFresh = async (): Promise<KeywayChild> => {
    freshChild = await startKeywayChild(freshOptions(setup.cli));
    return freshChild;
  };
  const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + BUDGET_MS, warmupMs: plan.warmupMs };
  /** Bounds cut by what is left of the run's time budget (for s7, which runs outside scenarios.ts). */
  const bounded = (b: Bounds): Bounds => ({ maxCount: b.maxCount, maxMs: Math.max(0, Math.min(b.maxMs, ctx.deadline - performance.now())) });

  log(
    `keyway benchmark (${quick ? 'quick' : 'full'}: ${plan.rounds} round${plan.rounds > 1 ? 's' : ''}, medians; warm-up ${plan.warmupMs / 1000} s per route and run)`,
  );
  log(
    `Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, client undici; keyway child pid ${child.pid} on ${child.url}; upstream https://*.bench.test:${upstream.port} (127.0.0.1)`,
  );
  peers = await startPeers({
    squid: options.squid,
    floor: options.floor,
    hosts,
    domainSuffix: BENCH_SUFFIX,
    secret,
    upstreamCaPath: TLS_FIXTURES.caPath,
    upstreamCa: TLS_FIXTURES.ca,
    inspect: options.profile,
    log,
  });
  const routes: Route[] = [directRoute(TLS_FIXTURES.ca, secret), keyway, ...peers.routes];
  log(`routes, round-robin: ${routes.map((r) => (r.name === 'direct' ? 'direct' : `${r.name} (${PEER_NOTES[r.name]})`)).join(', ')}`);
  log(`keyway child: node ${[...childNodeArgs, relative(process.cwd(), childCli ?? `${SRC_DIR}cli/main.ts`)].join(' ')} start`);
  log(`keyway child runs as: ${child.runtime()}`);
  log(`keyway store: ${database ? `PostgreSQL (throwaway cluster on 127.0.0.1:${database.port})` : 'the file data/store.json'}`);
  if (cpuProf) log('--cpu-prof: the keyway child is being profiled, so its figures are slower than usual');
  const profileRunDir = options.profile ? `${RESULTS_DIR}profile-${new Date().toISOString().replace(/[:.]/g, '-')}` : undefined;
  if (profileRunDir) {
    mkdirSync(profileRunDir, { recursive: true });
    const up = upstream;
    const targets = [{ name: 'keyway', client: await child.inspector(), requests: () => up.counts.viaKeyway }];
    if (peers.floor) targets.push({ name: 'floor', client: await peers.floor.inspector(), requests: () => up.counts.viaPeer['floor']?.requests ?? 0 });
    scenarioProfiler = new ScenarioProfiler(targets, profileRunDir, options.dist ? distSourceMapper() : undefined);
    log(`--profile: s2-s5 are profiled in keyway${peers.floor ? ' and the bare forwarder' : ''} (slower than usual); heap snapshots after s2 and s5`);
  }
  const sp = scenarioProfiler;
  /** Runs a scenario with the profilers on, when --profile. */
  const profiled = async <T>(scenario: string, run: () => Promise<T>): Promise<T> => {
    if (!sp) return run();
    await sp.start();
    const result = await run();
    await sp.stop(scenario);
    return result;
  };
  const memory = new MemoryLog(child, peers, log);
  const readRss = (when: string): RssReadings => memory.read(when);
  readRss('afterStart');

  section('s1: sequential small GETs on one kept-alive connection');
  const s1Rounds = await rounds(routes, plan.rounds, (r) => s1Sequential(r, ctx, plan.s1));
  const s1 = latencyFigures(s1Rounds);
  log(latencyTable(s1Rounds, s1));

  section(`s2: small GETs on ${plan.s2.connections} kept-alive connections in parallel`);
  const s2Rounds = await profiled('s2', () => rounds(routes, plan.rounds, (r) => s2Parallel(r, ctx, plan.s2)));
  const s2 = latencyFigures(s2Rounds);
  log(latencyTable(s2Rounds, s2));
  const rssAfterS2 = readRss('afterS2');
  await sp?.readMemory('after s2');

  section(`s3: 1 MiB downloads, ${plan.s3.concurrency} at a time`);
  const s3Rounds = await profiled('s3', () => rounds(routes, plan.rounds, (r) => s3Download(r, ctx, plan.s3)));
  const s3 = throughputFigures(s3Rounds);
  log(throughputTable(s3Rounds, s3));

  section(`s4: 1 MiB uploads, ${plan.s4.concurrency} at a time`);
  const s4Rounds = await profiled('s4', () => rounds(routes, plan.rounds, (r) => s4Upload(r, ctx, plan.s4)));
  const s4 = throughputFigures(s4Rounds);
  log(throughputTable(s4Rounds, s4));

  section(`s5: first request to each of ${plan.s5.hosts} new host names (h0…h${plan.s5.hosts - 1}.bench.test)`);
  const s5 = newHostFigures(await profiled('s5', () => s5NewHosts(routes, ctx, plan.s5)));
  log(newHostTable(s5));
  const rssAfterS5 = readRss('afterS5');
  await sp?.readMemory('after s5');
  sp?.close();

  const te = tokenEndpoint;
  section(
    `s6: s2's load (${plan.s6.connections} kept-alive connections) on an oauth2 grant whose token expires every ${plan.s6.tokenLifetimeS} s (${OAUTH_HOST})`,
  );
  const s6Result = await s6RefreshUnderLoad(keyway, ctx, plan.s6, { calls: () => te.counts.calls, refreshes: () => te.counts.refreshed });
  const s6 = refreshFigures(s6Result, plan.s6, s2, upstream.counts.oauth);
  log(refreshTable(s6Result, s6, plan.s6));
  readRss('afterS6');

  section(`s7: ${plan.s7.streams} concurrent streams on one HTTP/2 connection (upstream speaks h2; keyway vs direct, squid has no HTTP/2)`);
  const h2 = await startH2Upstream(secret);
  h2Upstream = h2;
  const s7 = await s7Rounds(
    keywayH2(child.url, MAIN_HOST, h2.port, [child.caPem, TLS_FIXTURES.ca]),
    directH2(MAIN_HOST, h2.port, TLS_FIXTURES.ca, secret),
    plan.rounds,
    (route) => s7Streams(route, MAIN_HOST, plan.s7, bounded({ maxCount: 1_000_000, maxMs: plan.warmupMs }), bounded(plan.s7.bounds), tally),
  );
  log(s7.ran && s7.figures ? latencyTable(s7.rounds, s7.figures) : s7.note);
  log(
    `h2 upstream: ${h2.counts.requests} requests (${h2.counts.overH2} over HTTP/2), ${h2.counts.withoutCredentialViaKeyway} through keyway without the credential`,
  );

  section(
    `s8: s2's load (${plan.s8.connections} kept-alive connections) through keyway on an aws_sigv4 grant (${AWS_HOST}), unsigned GETs keyway signs, against the bearer grant in the same rounds`,
  );
  const s8Rounds = await s8SignedGets(keyway, ctx, plan.s8, plan.rounds);
  const s8 = signedGetFigures(s8Rounds, s2);
  log(signedGetTable(s8Rounds, s8, s2));
  readRss('afterS8');

  section(
    `s9: s4's 1 MiB uploads (${plan.s9.concurrency} at a time) through keyway on the aws_sigv4 grant with a hex x-amz-content-sha256 (each body held and hashed), against the bearer grant`,
  );
  const s9Rounds = await s9SignedUploads(keyway, ctx, plan.s9, plan.rounds);
  const s9 = signedUploadFigures(s9Rounds, s4.keywayMiBps);
  log(signedUploadTable(s9Rounds, s9, s4.keywayMiBps));
  await aws.settled();
  log(awsHostLine(aws.counts));
  readRss('afterS9');

  section(
    `s10: s2's load (${plan.s10.connections} kept-alive connections) as JSON-RPC tools/call POSTs through keyway, to ${MCP_PATH} (an MCP endpoint: each message read and judged) against a plain path in the same rounds`,
  );
  const s10Rounds = await s10McpCalls(keyway, ctx, plan.s10, plan.rounds);
  const s10 = mcpFigures(s10Rounds);
  log(mcpTable(s10Rounds, s10));

  const workerCount = options.workers ?? Math.max(2, availableParallelism());
  let s11: ScalingFigures | undefined;
  let s11Rounds: ScalingRounds = [];
  if (options.scaling) {
    section(`s11: s2's load through keyway (proxy.workers) and squid (SMP workers) at 1 and ${workerCount} workers, round-robin with direct`);
    // A plain bearer grant on its own home: the N-worker keyway does s2's work, nothing else.
    const base = keywayBenchOptions(setup);
    keywayWorkers = await startKeywayChild({
      hosts,
      domains: base.domains,
      secret,
      upstreamCa: base.upstreamCa,
      nodeArgs: childNodeArgs,
      cli: childCli,
      env: tuningEnv(),
      workers: workerCount,
    });
    const kN = keywayWorkers;
    const squid1 = peers.routes.find((r) => r.name === 'squid');
    if (squid1 && peers.squid) {
      squidWorkers = await startSquidChild({ hosts, injectDomains: [BENCH_SUFFIX], secret, upstreamCaPath: TLS_FIXTURES.caPath, workers: workerCount });
    }
    const sN = squidWorkers;
    const squid = peers.squid;
    const scalingRoutes: ScalingRoute[] = [
      { label: 'direct', proxy: 'direct', workers: 0, route: routes[0]! },
      { label: 'keyway x1', proxy: 'keyway', workers: 1, route: keyway, memory: () => child!.memory() },
      {
        label: `keyway x${workerCount}`,
        proxy: 'keyway',
        workers: workerCount,
        route: proxyRoute('keyway', kN.url, kN.caPem, TLS_FIXTURES.ca, () => processTreeCpuMs(kN.pid)),
        memory: () => processTreeMemory(kN.pid),
      },
      ...(squid1 && squid ? [{ label: 'squid x1', proxy: 'squid' as const, workers: 1, route: squid1, memory: () => squid.memory() }] : []),
      ...(sN
        ? [
            {
              label: `squid x${workerCount}`,
              proxy: 'squid' as const,
              workers: workerCount,
              route: proxyRoute('squid', sN.url, sN.caPem, TLS_FIXTURES.ca, sN.cpuMs),
              memory: () => sN.memory(),
            },
          ]
        : []),
    ];
    log(`keyway with ${workerCount} workers: pid ${kN.pid} on ${kN.url}${sN ? `; squid with ${workerCount} workers: pid ${sN.pid} on ${sN.url}` : ''}`);
    s11Rounds = await s11Scaling(scalingRoutes, ctx, plan.s2, plan.rounds);
    s11 = scalingFigures(scalingRoutes, s11Rounds, workerCount);
    log(scalingTable(s11));
    await kN.stop();
    keywayWorkers = undefined;
    await sN?.stop();
    squidWorkers = undefined;
  }

  // Issue 92: what an agent's burst meets. Every process above was warmed a second before each timed
  // loop and timed for seconds; here each is started for the round and read from its first request.
  const burstPlan = quick ? QUICK_BURST_PLAN : BURST_PLAN;
  section(
    `short rounds: s1's first ${burstPlan.s1Requests} and s2's first ${burstPlan.s2Requests} requests after a fresh start, then s2's long round (${burstPlan.longMs / 1000} s) and s1 again; keyway${peers.squid ? ' and squid' : ''} started afresh for each of ${plan.rounds} rounds, in turns`,
  );
  const squidOptions = { hosts, injectDomains: [BENCH_SUFFIX], secret, upstreamCaPath: TLS_FIXTURES.caPath };
  const direct = { port: upstream.port, direct: routes[0]! };
  const short: BurstSeries = await shortRounds({
    plan: burstPlan,
    rounds: plan.rounds,
    startKeyway: async () => keywayFresh(await startFresh()),
    startSquid: peers.squid
      ? () =>
          squidFresh(squidOptions, (q) => {
            shortSquid = q;
          })
      : undefined,
    upstream: direct,
    tally,
  });
  log(burstTable(short, Object.keys(short.rounds)));
  freshChild = undefined;

  let shortAgainstBaseline: BurstSeries | undefined;
  let baseline:
    | { commit: string; changes: ReturnType<typeof baselineChanges>; rounds: Awaited<ReturnType<typeof baselineRounds>> }
    | { skipped: string }
    | undefined;
  if (baselineRef !== undefined) {
    section(`against the baseline: s2, s8 and s10 on this build and on ${baselineRef.slice(0, 12)}, interleaved in the same rounds`);
    const build = checkoutBaseline(baselineRef);
    if ('why' in build) {
      log(`baseline skipped: ${build.why}`);
      baseline = { skipped: build.why };
    } else {
      baselineBuild = build;
      // Its own home and grants, as this build's; its token endpoint is never called (no s6 here).
      baselineChild = await startKeywayChild(freshOptions(build.cli));
      const b = baselineChild;
      // This build in a fresh child too, not the one that has run every scenario above: that one
      // read 11-17% dearer than a fresh baseline in three full runs in a row while fresh pairs of the
      // same two builds (bench/ab.ts, 10 restarts) read 1.015 (docs/perf/breakdown.md, seventh pass).
      const current = await startFresh();
      const rounds = await baselineRounds(
        keywayRoute(current.url, current.caPem, TLS_FIXTURES.ca, () => processCpuMs(current.pid)),
        keywayRoute(b.url, b.caPem, TLS_FIXTURES.ca, () => processCpuMs(b.pid)),
        ctx,
        plan.s2,
        plan.rounds,
      );
      const changes = baselineChanges(rounds);
      log(baselineTable(changes, stored?.ref !== undefined && build.commit.startsWith(stored.ref) ? stored : undefined, build.commit));
      baseline = { commit: build.commit, changes, rounds };
      await b.stop();
      baselineChild = undefined;
      await stopFresh();
      // The same two builds from a fresh start (the short rounds above), in turns.
      shortAgainstBaseline = await burstSeries(
        [
          { name: 'this build', start: async () => keywayFresh(await startFresh()) },
          {
            name: 'baseline',
            start: async () => {
              baselineChild = await startKeywayChild(freshOptions(build.cli));
              return keywayFresh(baselineChild);
            },
          },
        ],
        plan.rounds,
        direct,
        tally,
        burstPlan,
      );
      freshChild = undefined;
      baselineChild = undefined;
      log(burstTable(shortAgainstBaseline, ['this build', 'baseline']));
      log(`${shortBaselineLine(shortAgainstBaseline, build.commit).measured}: this build ÷ baseline, CPU per request on s2's first requests`);
      build.remove();
      baselineBuild = undefined;
    }
  }

  // Issue 59: every answer on an agent's connections is searched for every real value keyway holds
  // for it. The cost of 16 captured logins, on s2, s8 and s10, against the same load with none.
  section(`held values: s2, s8 and s10 through a keyway holding ${HELD_LOGINS} captured logins and through one holding none, interleaved`);
  const loginEndpoint = await startLoginEndpoint();
  let held: { changes: ReturnType<typeof baselineChanges>; rounds: Awaited<ReturnType<typeof baselineRounds>> } | undefined;
  try {
    heldChild = await startKeywayChild(withCaptureGrant(freshOptions(setup.cli), loginEndpoint));
    const h = heldChild;
    await logInThrough(h.url, loginEndpoint);
    // Against a fresh child holding none, as fresh as the one holding logins (see the baseline's).
    const none = await startFresh();
    const rounds = await baselineRounds(
      keywayRoute(h.url, h.caPem, TLS_FIXTURES.ca, () => processCpuMs(h.pid)),
      keywayRoute(none.url, none.caPem, TLS_FIXTURES.ca, () => processCpuMs(none.pid)),
      ctx,
      plan.s2,
      plan.rounds,
    );
    const changes = baselineChanges(rounds);
    log(heldTable(changes));
    held = { changes, rounds };
  } finally {
    await heldChild?.stop().catch(() => undefined);
    heldChild = undefined;
    await stopFresh();
    await loginEndpoint.close();
  }

  const counts = { ...upstream.counts, oauth: { ...upstream.counts.oauth } };
  const peerCounts = Object.entries(counts.viaPeer);
  const withoutViaPeers = peerCounts.reduce((n, [, c]) => n + c.withoutCredential, 0);
  const withoutViaKeyway = counts.withoutCredentialViaKeyway + h2.counts.withoutCredentialViaKeyway;
  section('credential check');
  log(
    `upstream saw ${counts.total} requests, ${counts.viaKeyway} of them through keyway${peerCounts.map(([p, c]) => `, ${c.requests} through ${p}`).join('')}`,
  );
  log(
    `requests through keyway without the credential: ${withoutViaKeyway} (without it from any route: ${counts.withoutCredential + h2.counts.withoutCredential})`,
  );
  log(
    `upstream TLS connections: ${counts.connectionsDirect} from the direct client, ${counts.connectionsViaKeyway} from keyway${peerCounts.map(([p, c]) => `, ${c.connections} from ${p}`).join('')}`,
  );
  log(`(s6's ${counts.oauth.total} requests to ${OAUTH_HOST} and s8/s9's ${aws.counts.total} to ${AWS_HOST} are counted apart, above)`);
  const incomplete =
    (s5.keyway.hosts < plan.s5.hosts ? 1 : 0) +
    (s6Result.requests === 0 ? 1 : 0) +
    [s1Rounds, s2Rounds].flat().filter((p) => p.keyway.requests === 0 || p.direct.requests === 0).length +
    s8Rounds.filter((p) => p.bearer.requests === 0 || p.sigv4.requests === 0).length +
    s10Rounds.filter((p) => p.plain.requests === 0 || p.mcp.requests === 0).length;

  const summary = { s1, s2, s3, s4, s5, s7, rssAfterS2, rssAfterS5, withoutCredential: withoutViaKeyway, s6 };
  const againstSquid = squidTargetLines(summary);
  const earlier = directTargetLines(summary);
  const signing = signedTargetLines(s8, s9, aws.counts);
  const reading = mcpTargetLines(s10);
  const cores = scalingTargetLines(s11);
  // The stored baseline's peer figures (s2 CPU ÷ squid, s5 − squid, RSS), in a full run only.
  const shortLines = shortRoundTargetLines(short);
  const guard = [
    ...(stored?.peerFigures && !quick ? storedGuardLines(stored.peerFigures, peerFiguresOf(summary, short)) : []),
    ...(shortAgainstBaseline && baseline && 'commit' in baseline ? [shortBaselineLine(shortAgainstBaseline, baseline.commit)] : []),
  ];
  const lines = [...againstSquid, ...shortLines, ...earlier, ...signing, ...reading, ...(options.scaling ? cores : []), ...guard];
  const errors: string[] = [];
  if (tally.badStatus > 0) errors.push(`${tally.badStatus} responses with an unexpected status`);
  if (tally.badBody > 0) errors.push(`${tally.badBody} responses with a wrong body size`);
  if (tally.first) errors.push(`first: ${tally.first}`);
  if (counts.withoutCredential !== counts.withoutCredentialViaKeyway + withoutViaPeers)
    errors.push('direct requests arrived without the credential (benchmark bug)');
  if (withoutViaPeers > 0) errors.push(`${withoutViaPeers} requests through a peer (squid, floor) arrived without the credential (benchmark bug)`);
  if (h2.counts.withoutCredential !== h2.counts.withoutCredentialViaKeyway)
    errors.push('direct HTTP/2 requests arrived without the credential (benchmark bug)');
  if (incomplete > 0) errors.push(`${incomplete} scenario runs ended early (time budget)`);
  // invalid_grant is keyway's doing (a refresh storm) and shows in s6; these are the benchmark's.
  const tokenSetupErrors = te.counts.invalidClient + te.counts.otherErrors;
  if (tokenSetupErrors > 0) errors.push(`the s6 token endpoint refused ${tokenSetupErrors} calls for client authentication or form (benchmark bug)`);
  if (aws.counts.refused > 0) errors.push(`${aws.counts.refused} requests reached the SigV4 host without keyway's signature`);
  if (aws.counts.verifyFailed > 0) errors.push(`${aws.counts.verifyFailed} sampled SigV4 signatures failed verification; first: ${aws.counts.firstProblem}`);

  await child.stop();
  await peers.stop();
  const profile: ProfileReport | undefined = profileDir ? profileOf(profileDir) : undefined;
  const seconds = (performance.now() - started) / 1000;

  section('summary: issue 12 targets, keyway against squid in this run (memory against the bare forwarder)');
  log(summaryTable(againstSquid));
  section('summary: issue 92 targets, short rounds from a fresh start, keyway against squid in the same rounds');
  log(summaryTable(shortLines));
  section('summary: earlier targets, keyway against direct');
  log(summaryTable(earlier));
  section('summary: issue 24 targets, keyway on an aws_sigv4 grant against keyway on the bearer grant in the same rounds');
  log(summaryTable(signing));
  section('summary: issue 27 target, keyway reading MCP messages against the same POSTs on a plain path in the same rounds');
  log(summaryTable(reading));
  if (options.scaling) {
    section('summary: issue 38 target, keyway and squid with a worker per core, in the same rounds');
    log(summaryTable(cores));
  }
  if (guard.length > 0) {
    section(`summary: against the stored baseline's figures (bench/baseline.json, ${stored?.ref ?? ''})`);
    log(summaryTable(guard));
  }
  const targets = lines.filter((l) => !l.info);
  log(`\n${targets.filter((l) => l.pass).length}/${targets.length} targets met; run took ${fixed(seconds, 1)} s`);
  if (quick) log('quick run: one short round on a cold keyway, a smoke check only; judge the targets with `npm run bench`');
  else if (plan.rounds < 3) log(`${plan.rounds} round(s): the targets are judged on medians of at least 3`);
  if (profile) log(`\n${formatProfile(profile)}`);
  if (sp && profileRunDir) {
    const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    const header = [
      `keyway ${buildCommit()}, ${new Date().toISOString()}; Node ${process.version}, ${cpus().length} CPUs; ${quick ? 'quick' : 'full'} run, ${plan.rounds} round(s);`,
      `load average ${load(loadAtStart)} at the start, ${load(loadavg())} at the end; keyway child: ${relative(process.cwd(), childCli ?? `${SRC_DIR}cli/main.ts`)}.`,
    ];
    const path = `${profileRunDir}/profile.md`;
    writeFileSync(path, `${profileMarkdown(sp, header)}\n`);
    writeFileSync(`${profileRunDir}/profile.json`, `${JSON.stringify({ header, ...(sp.toJSON() as object) }, null, 1)}\n`);
    section(`--profile: per scenario, busy CPU per request and where it went; memory after s2 and s5 (full report: ${relative(process.cwd(), path)})`);
    log(profileSummary(sp));
  }

  const reference = referenceRows({ s1, s2, s3, s4, s5, rssAfterS2, rssAfterS5, s11 });
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const referenceText = referenceMarkdown(
    reference,
    [
      `keyway ${buildCommit()} beside squid ${peers.squid?.version ?? '(did not run)'} (ssl-bump) and the bare Node forwarder, ${new Date().toISOString().slice(0, 10)}:`,
      `${quick ? 'quick' : 'full'} run, medians of ${plan.rounds} round(s); Node ${process.version}, ${cpus().length} CPUs; load average ${load(loadAtStart)} at the start, ${load(loadavg())} at the end.`,
      'Every route carries the same credential on the same upstream, on loopback; the client and the upstream share the bench process.',
    ].join('\n'),
  );
  section('the reference table: keyway, squid and the floor side by side (medians of this run)');
  log(referenceText);

  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}latest.md`, `${referenceText}\n`);
  const reportPath = `${RESULTS_DIR}latest.json`;
  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    node: process.version,
    cpus: cpus().length,
    cpuProfile: cpuProf,
    loadAverage: loadavg(),
    peers: { squid: peers.squid ? { version: peers.squid.version } : null, floor: Boolean(peers.floor) },
    keywayChild: { cli: relative(process.cwd(), childCli ?? `${SRC_DIR}cli/main.ts`), nodeArgs: childNodeArgs },
    plan,
    seconds,
    scenarios: {
      s1: { figures: s1, rounds: s1Rounds },
      s2: { figures: s2, rounds: s2Rounds },
      s3: { figures: s3, rounds: s3Rounds },
      s4: { figures: s4, rounds: s4Rounds },
      s5: { figures: s5 },
      s6: { figures: s6, result: s6Result, tokenEndpoint: { ...te.counts } },
      s7: { ...s7, upstream: { ...h2.counts } },
      s8: { figures: s8, rounds: s8Rounds },
      s9: { figures: s9, rounds: s9Rounds },
      s10: { figures: s10, rounds: s10Rounds },
      ...(s11 ? { s11: { figures: s11, rounds: s11Rounds } } : {}),
    },
    shortRounds: {
      plan: burstPlan,
      figures: Object.fromEntries(Object.keys(short.rounds).map((name) => [name, burstFigures(short, name)])),
      series: short,
      ...(shortAgainstBaseline ? { againstBaseline: shortAgainstBaseline } : {}),
    },
    ...(baseline ? { baseline } : {}),
    ...(held ? { held } : {}),
    memoryMiB: memory.keyway,
    peerMemoryMiB: memory.peers,
    upstream: { ...counts, aws: { ...aws.counts } },
    requestsWithoutCredential: counts.withoutCredentialViaKeyway,
    targets: lines,
    reference,
    errors,
    ...(profile ? { profile } : {}),
  };
  writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  log(`results written to ${reportPath}`);

  if (errors.length > 0) {
    process.stderr.write(`bench: errors:\n  ${errors.join('\n  ')}\n`);
    return 1;
  }
  return 0;
}

/** The commit this checkout is at, marked when files differ from it. */
function buildCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${commit} with changes to src/` : commit;
  } catch {
    return '(not a git checkout)';
  }
}

function profileOf(dir: string): ProfileReport | undefined {
  const file = latestProfile(dir);
  if (!file) {
    process.stderr.write(`bench: no .cpuprofile written in ${dir}\n`);
    return undefined;
  }
  return summariseProfile(file, 15, options.dist ? distSourceMapper() : undefined);
}

async function stopFresh(): Promise<void> {
  await freshChild?.stop().catch(() => undefined);
  freshChild = undefined;
}

async function shutdown(): Promise<void> {
  scenarioProfiler?.close();
  await child?.stop().catch(() => undefined);
  await keywayWorkers?.stop().catch(() => undefined);
  await squidWorkers?.stop().catch(() => undefined);
  await shortSquid?.stop().catch(() => undefined);
  await baselineChild?.stop().catch(() => undefined);
  await heldChild?.stop().catch(() => undefined);
  await stopFresh();
  baselineBuild?.remove();
  await peers?.stop().catch(() => undefined);
  await h2Upstream?.close().catch(() => undefined);
  await upstream?.close().catch(() => undefined);
  await tokenEndpoint?.close().catch(() => undefined);
  await database?.destroy().catch(() => undefined);
}

main().then(
  async (code) => {
    await shutdown();
    process.exitCode = code;
  },
  async (err: unknown) => {
    process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`);
    if (child) process.stderr.write(`keyway output (last lines):\n${child.output()}\n`);
    await shutdown();
    process.exitCode = 1;
  },
);
