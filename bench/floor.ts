// `npm run bench:floor`: s1-s5 of the benchmark through bench/bare-forwarder.mjs instead of keyway,
// under keyway's own runtime settings. It answers "how much of keyway's cost is keyway's": the
// forwarder does only what any intercepting proxy on this stack must (CONNECT, TLS both ways,
// undici upstream, one header set), so its figures are a floor for keyway's on this machine.
// Leaves are made beforehand (here, with keyway's CA code), so s5 shows no minting cost.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROXY_ENV, PROXY_NODE_FLAGS } from '../src/cli/proxy-runtime.ts';
import { LeafMinter, loadOrCreateCa } from '../src/tls/index.ts';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { directRoute, keywayRoute, type Tally } from './clients.ts';
import { readMemory } from './keyway-child.ts';
import { latencyFigures, latencyTable, newHostFigures, newHostTable, throughputFigures, throughputTable } from './report.ts';
import { FULL_PLAN, MAIN_HOST, newHost, rounds, s1Sequential, s2Parallel, s3Download, s4Upload, s5NewHosts, warmHost, type Context } from './scenarios.ts';
import { fixed } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

const FORWARDER = fileURLToPath(new URL('./bare-forwarder.mjs', import.meta.url));
const plan = FULL_PLAN;
const log = (text = '') => process.stdout.write(`${text}\n`);

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'keyway-floor-'));
const upstream = await startBenchUpstream(secret);
const ca = await loadOrCreateCa(join(dir, 'certs'));
const minter = new LeafMinter(ca);
const hosts = [
  MAIN_HOST,
  ...Array.from({ length: plan.s5.warmupHosts }, (_, i) => warmHost(i)),
  ...Array.from({ length: plan.s5.hosts }, (_, i) => newHost(i)),
];
const leavesFile = join(dir, 'leaves.json');
writeFileSync(leavesFile, JSON.stringify(Object.fromEntries(hosts.map((h) => [h, minter.mint(h)]))));

const child = spawn(process.execPath, [...PROXY_NODE_FLAGS, FORWARDER, JSON.stringify({ upstreamCaFile: TLS_FIXTURES.caPath, secret, leavesFile })], {
  env: { PATH: process.env['PATH'] ?? '', ...PROXY_ENV },
  stdio: ['ignore', 'inherit', 'pipe'],
});
const url = await new Promise<string>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the bare forwarder did not start in 15 s')), 15_000);
  child.stderr!.on('data', (chunk: Buffer) => {
    const found = /on (http:\/\/\S+)/.exec(chunk.toString());
    if (found?.[1]) {
      clearTimeout(timer);
      resolve(found[1]);
    }
  });
  child.once('exit', (code) => reject(new Error(`the bare forwarder exited (${code})`)));
});

const tally: Tally = { badStatus: 0, badBody: 0 };
const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 150_000 };
const routes = [directRoute(TLS_FIXTURES.ca, secret), keywayRoute(url, ca.certPem, TLS_FIXTURES.ca)] as const;
const rss = () => fixed(readMemory(child.pid!).rssMiB, 1);

log(
  `floor: the bare forwarder (bench/bare-forwarder.mjs) in the "keyway" column, node ${PROXY_NODE_FLAGS.join(' ')}, ${Object.entries(PROXY_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`,
);
log(`RSS after start: ${rss()} MiB`);
log('\n== s1: sequential small GETs on one kept-alive connection');
const s1 = await rounds(routes, plan.rounds, (r) => s1Sequential(r, ctx, plan.s1));
log(latencyTable(s1, latencyFigures(s1)));
log('\n== s2: small GETs on 64 kept-alive connections in parallel');
const s2 = await rounds(routes, plan.rounds, (r) => s2Parallel(r, ctx, plan.s2));
log(latencyTable(s2, latencyFigures(s2)));
log(`RSS after s2: ${rss()} MiB`);
log('\n== s3: 1 MiB downloads');
const s3 = await rounds(routes, plan.rounds, (r) => s3Download(r, ctx, plan.s3));
log(throughputTable(s3, throughputFigures(s3)));
log(`RSS after s3: ${rss()} MiB`);
log('\n== s4: 1 MiB uploads');
const s4 = await rounds(routes, plan.rounds, (r) => s4Upload(r, ctx, plan.s4));
log(throughputTable(s4, throughputFigures(s4)));
log('\n== s5: first request to each of 200 new host names');
const [d5, k5] = await s5NewHosts(routes, ctx, plan.s5);
log(newHostTable(newHostFigures({ direct: d5, keyway: k5 })));
log(`RSS after s5: ${rss()} MiB`);

child.kill('SIGTERM');
await upstream.close();
rmSync(dir, { recursive: true, force: true });
const bad = tally.badStatus + tally.badBody;
if (bad > 0) process.stderr.write(`floor: ${bad} unexpected responses (first: ${tally.first})\n`);
process.exit(bad > 0 ? 1 : 0);
