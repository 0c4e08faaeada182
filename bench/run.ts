// keyway benchmark: `npm run bench` (full, about a minute) or `node bench/run.ts --quick` (smoke run);
// the options are listed in USAGE below. Results also go to bench/results/latest.json (git-ignored).
//
// One process holds the client (undici) and the HTTPS upstream; keyway runs in a child process so
// its memory can be read on its own. Every scenario runs direct and through keyway, alternating
// which goes first, and the figures are medians over the rounds, except s6 (refresh under load), which
// runs once through keyway against a local token endpoint and is compared with s2. A MISS is reported, not fatal:
// the exit code is non-zero only if something errored.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { directRoute, keywayRoute, type Tally } from './clients.ts';
import { startKeywayChild, tuningEnv, type KeywayChild, type MemoryReading } from './keyway-child.ts';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.ts';
import { formatProfile, latestProfile, summariseProfile, type ProfileReport } from './profile.ts';
import {
  latencyFigures,
  latencyTable,
  newHostFigures,
  newHostTable,
  refreshFigures,
  refreshTable,
  summaryTable,
  targetLines,
  throughputFigures,
  throughputTable,
} from './report.ts';
import {
  FULL_PLAN,
  MAIN_HOST,
  OAUTH_HOST,
  QUICK_PLAN,
  newHost,
  rounds,
  s1Sequential,
  s2Parallel,
  s3Download,
  s4Upload,
  s5NewHosts,
  s6RefreshUnderLoad,
  warmHost,
  type Context,
  type Plan,
} from './scenarios.ts';
import { fixed } from './stats.ts';
import { startTokenEndpoint, type BenchTokenEndpoint } from './token-endpoint.ts';
import { startBenchUpstream, type BenchUpstream } from './upstream.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));
const DIST_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const USAGE = `usage: node bench/run.ts [--quick] [--cpu-prof] [--dist] [--store=postgres] [--node-arg=OPTION]...
  --quick            short smoke run (1 round, small counts)
  --cpu-prof         profile the keyway child (node --cpu-prof) and print where its CPU time went
  --dist             run the built dist/cli/main.js instead of src/cli/main.ts (npm run build first)
  --store=postgres   keep keyway's store in a throwaway PostgreSQL (store.backend: postgres) instead of the file
  --node-arg=OPTION  extra node option for the keyway child, e.g. --node-arg=--max-old-space-size=96
keyway start re-executes itself under its runtime settings (src/cli/proxy-runtime.ts); node options
given here come after those and win. KEYWAY_RUNTIME=as-is and MALLOC_* in the environment are passed
to the child, to compare settings.`;

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = argv.filter((a) => !['--quick', '--cpu-prof', '--dist', '--store=postgres', '--store=file'].includes(a) && !a.startsWith('--node-arg='));
if (unknown.length > 0) {
  console.error(`unknown option ${unknown.join(' ')}\n${USAGE}`);
  process.exit(2);
}
const quick = argv.includes('--quick');
const cpuProf = argv.includes('--cpu-prof');
const childNodeArgs = argv.filter((a) => a.startsWith('--node-arg=')).map((a) => a.slice('--node-arg='.length));
const childCli = argv.includes('--dist') ? builtCli() : undefined;
const onPostgres = argv.includes('--store=postgres');
const plan: Plan = quick ? QUICK_PLAN : FULL_PLAN;
// No loop starts a request after the budget; the watchdog ends a run that hangs anyway.
const BUDGET_MS = quick ? 45_000 : 150_000;
const WATCHDOG_MS = BUDGET_MS + 60_000;

const log = (text = '') => process.stdout.write(`${text}\n`);
const section = (title: string) => log(`\n== ${title}`);

let child: KeywayChild | undefined;
let upstream: BenchUpstream | undefined;
let tokenEndpoint: BenchTokenEndpoint | undefined;
let database: TestPostgres | undefined;

const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${WATCHDOG_MS / 1000} s; giving up\n`);
  if (child) process.kill(child.pid, 'SIGKILL');
  process.exit(3);
}, WATCHDOG_MS);
watchdog.unref();
process.once('SIGINT', () => {
  if (child) process.kill(child.pid, 'SIGKILL');
  process.exit(130);
});

async function main(): Promise<number> {
  const started = performance.now();
  const secret = `kwb-${randomBytes(24).toString('hex')}`;
  const tally: Tally = { badStatus: 0, badBody: 0 };
  const profileDir = cpuProf ? `${RESULTS_DIR}profile-${Date.now()}` : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  // s6: an oauth2 grant on its own host, refreshed at a local token endpoint that rotates tokens.
  const oauthClient = { id: 'keyway-bench', secret: `kwb-client-${randomBytes(16).toString('hex')}` };
  const seedRefreshToken = `kwb-rt-${randomBytes(24).toString('hex')}`;
  tokenEndpoint = await startTokenEndpoint({
    clientId: oauthClient.id,
    clientSecret: oauthClient.secret,
    initialRefreshToken: seedRefreshToken,
    lifetimeS: plan.s6.tokenLifetimeS,
  });
  upstream = await startBenchUpstream(secret, { host: OAUTH_HOST, check: tokenEndpoint.check });
  const hosts = [
    MAIN_HOST,
    OAUTH_HOST,
    ...Array.from({ length: plan.s5.warmupHosts }, (_, i) => warmHost(i)),
    ...Array.from({ length: plan.s5.hosts }, (_, i) => newHost(i)),
  ];
  // --store=postgres: the request path must not touch the database, so s2 should not move; s6's
  // refreshes take the database's lock and write the rotated token there.
  if (onPostgres) database = await startPostgres();
  child = await startKeywayChild({
    hosts,
    domains: ['*.bench.test'],
    secret,
    upstreamCa: [TLS_FIXTURES.caPath],
    cpuProfileDir: profileDir,
    nodeArgs: childNodeArgs,
    cli: childCli,
    env: { ...tuningEnv(), BENCH_OAUTH_CLIENT_SECRET: oauthClient.secret, ...(database ? { KEYWAY_DATABASE_URL: database.url } : {}) },
    config: {
      ...(database ? { store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' } } : {}),
      oauth: { refresh_skew: `${plan.s6.refreshSkewS}s` },
      providers: { benchauth: { token_url: tokenEndpoint.url, client_id: oauthClient.id, client_secret: 'env:BENCH_OAUTH_CLIENT_SECRET' } },
    },
    setup: [
      { args: ['grants', 'add', 'oauth', '--type', 'oauth2', '--domains', OAUTH_HOST, '--provider', 'benchauth'] },
      {
        args: ['secrets', 'set', 'oauth', '--stdin'],
        // Already expired: the first request through keyway refreshes it.
        stdin: JSON.stringify({
          clientId: oauthClient.id,
          clientSecret: oauthClient.secret,
          refreshToken: seedRefreshToken,
          accessToken: `kwb-expired-${randomBytes(16).toString('hex')}`,
          expiresAt: Date.now() - 1000,
        }),
      },
    ],
  });
  const routes = [directRoute(TLS_FIXTURES.ca, secret), keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca)] as const;
  const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + BUDGET_MS };

  log(`keyway benchmark (${quick ? 'quick' : 'full'}: ${plan.rounds} round${plan.rounds > 1 ? 's' : ''}, medians)`);
  log(
    `Node ${process.version}, ${cpus().length} CPUs, client undici; keyway child pid ${child.pid} on ${child.url}; upstream https://*.bench.test:${upstream.port} (127.0.0.1)`,
  );
  log(`keyway child: node ${[...childNodeArgs, relative(process.cwd(), childCli ?? `${SRC_DIR}cli/main.ts`)].join(' ')} start`);
  log(`keyway child runs as: ${child.runtime()}`);
  log(`keyway store: ${database ? `PostgreSQL (throwaway cluster on 127.0.0.1:${database.port})` : 'the file data/store.json'}`);
  if (cpuProf) log('--cpu-prof: the keyway child is being profiled, so its figures are slower than usual');
  const memory: Record<string, MemoryReading> = { afterStart: child.memory() };
  log(`keyway RSS after start: ${fixed(memory['afterStart']?.rssMiB ?? NaN, 1)} MiB`);

  section('s1: sequential small GETs on one kept-alive connection');
  const s1Rounds = await rounds(routes, plan.rounds, (r) => s1Sequential(r, ctx, plan.s1));
  const s1 = latencyFigures(s1Rounds);
  log(latencyTable(s1Rounds, s1));

  section(`s2: small GETs on ${plan.s2.connections} kept-alive connections in parallel`);
  const s2Rounds = await rounds(routes, plan.rounds, (r) => s2Parallel(r, ctx, plan.s2));
  const s2 = latencyFigures(s2Rounds);
  log(latencyTable(s2Rounds, s2));
  memory['afterS2'] = child.memory();
  log(`keyway RSS after s2: ${fixed(memory['afterS2'].rssMiB, 1)} MiB (peak ${fixed(memory['afterS2'].peakMiB, 1)} MiB)`);

  section(`s3: 1 MiB downloads, ${plan.s3.concurrency} at a time`);
  const s3Rounds = await rounds(routes, plan.rounds, (r) => s3Download(r, ctx, plan.s3));
  const s3 = throughputFigures(s3Rounds);
  log(throughputTable(s3Rounds, s3));

  section(`s4: 1 MiB uploads, ${plan.s4.concurrency} at a time`);
  const s4Rounds = await rounds(routes, plan.rounds, (r) => s4Upload(r, ctx, plan.s4));
  const s4 = throughputFigures(s4Rounds);
  log(throughputTable(s4Rounds, s4));

  section(`s5: first request to each of ${plan.s5.hosts} new host names (h0…h${plan.s5.hosts - 1}.bench.test)`);
  const [d5, k5] = await s5NewHosts(routes, ctx, plan.s5);
  const s5 = newHostFigures({ direct: d5, keyway: k5 });
  log(newHostTable(s5));
  memory['afterS5'] = child.memory();
  log(`keyway RSS after s5: ${fixed(memory['afterS5'].rssMiB, 1)} MiB (peak ${fixed(memory['afterS5'].peakMiB, 1)} MiB)`);

  const te = tokenEndpoint;
  section(
    `s6: s2's load (${plan.s6.connections} kept-alive connections) on an oauth2 grant whose token expires every ${plan.s6.tokenLifetimeS} s (${OAUTH_HOST})`,
  );
  const s6Result = await s6RefreshUnderLoad(routes[1], ctx, plan.s6, { calls: () => te.counts.calls, refreshes: () => te.counts.refreshed });
  const s6 = refreshFigures(s6Result, plan.s6, s2, upstream.counts.oauth);
  log(refreshTable(s6Result, s6, plan.s6));
  memory['afterS6'] = child.memory();
  log(`keyway RSS after s6: ${fixed(memory['afterS6'].rssMiB, 1)} MiB (peak ${fixed(memory['afterS6'].peakMiB, 1)} MiB)`);

  const counts = { ...upstream.counts, oauth: { ...upstream.counts.oauth } };
  section('credential check');
  log(`upstream saw ${counts.total} requests, ${counts.viaKeyway} of them through keyway`);
  log(`requests through keyway without the credential: ${counts.withoutCredentialViaKeyway} (without it from any route: ${counts.withoutCredential})`);
  log(`upstream TLS connections: ${counts.connectionsDirect} from the direct client, ${counts.connectionsViaKeyway} from keyway`);
  log(`(s6's ${counts.oauth.total} requests to ${OAUTH_HOST} are counted apart, above)`);
  const incomplete =
    (s5.keyway.hosts < plan.s5.hosts ? 1 : 0) +
    (s6Result.requests === 0 ? 1 : 0) +
    [s1Rounds, s2Rounds].flat().filter((p) => p.keyway.requests === 0 || p.direct.requests === 0).length;

  const lines = targetLines({
    s1,
    s2,
    s3,
    s4,
    s5,
    rssAfterS2MiB: memory['afterS2'].rssMiB,
    rssAfterS5MiB: memory['afterS5'].rssMiB,
    withoutCredential: counts.withoutCredentialViaKeyway,
    s6,
  });
  const errors: string[] = [];
  if (tally.badStatus > 0) errors.push(`${tally.badStatus} responses with an unexpected status`);
  if (tally.badBody > 0) errors.push(`${tally.badBody} responses with a wrong body size`);
  if (tally.first) errors.push(`first: ${tally.first}`);
  if (counts.withoutCredential !== counts.withoutCredentialViaKeyway) errors.push('direct requests arrived without the credential (benchmark bug)');
  if (incomplete > 0) errors.push(`${incomplete} scenario runs ended early (time budget)`);
  // invalid_grant is keyway's doing (a refresh storm) and shows in s6; these are the benchmark's.
  const tokenSetupErrors = te.counts.invalidClient + te.counts.otherErrors;
  if (tokenSetupErrors > 0) errors.push(`the s6 token endpoint refused ${tokenSetupErrors} calls for client authentication or form (benchmark bug)`);

  await child.stop();
  const profile: ProfileReport | undefined = profileDir ? profileOf(profileDir) : undefined;
  const seconds = (performance.now() - started) / 1000;

  section('summary (targets from the issue)');
  log(summaryTable(lines));
  const targets = lines.filter((l) => !l.info);
  log(`\n${targets.filter((l) => l.pass).length}/${targets.length} targets met; run took ${fixed(seconds, 1)} s`);
  if (quick) log('quick run: one short round on a cold keyway, a smoke check only; judge the targets with `npm run bench`');
  if (profile) log(`\n${formatProfile(profile)}`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const reportPath = `${RESULTS_DIR}latest.json`;
  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    node: process.version,
    cpus: cpus().length,
    cpuProfile: cpuProf,
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
    },
    memoryMiB: memory,
    upstream: counts,
    requestsWithoutCredential: counts.withoutCredentialViaKeyway,
    targets: lines,
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

/** dist/cli/main.js, refused when missing or older than any file under src/ (a stale build). */
function builtCli(): string {
  if (!existsSync(DIST_CLI)) {
    console.error('--dist: dist/cli/main.js is missing; run `npm run build` first');
    process.exit(2);
  }
  const built = statSync(DIST_CLI).mtimeMs;
  const stale = readdirSync(SRC_DIR, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => statSync(join(SRC_DIR, f)).mtimeMs > built);
  if (stale.length > 0) {
    console.error(`--dist: dist/ is older than src/ (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', …' : ''}); run \`npm run build\` first`);
    process.exit(2);
  }
  return DIST_CLI;
}

function profileOf(dir: string): ProfileReport | undefined {
  const file = latestProfile(dir);
  if (!file) {
    process.stderr.write(`bench: no .cpuprofile written in ${dir}\n`);
    return undefined;
  }
  return summariseProfile(file);
}

async function shutdown(): Promise<void> {
  await child?.stop().catch(() => undefined);
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
