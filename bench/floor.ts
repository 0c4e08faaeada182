// `npm run bench:floor`: s1-s5 of the benchmark through bench/bare-forwarder.mjs alone (direct beside
// it), under keyway's own runtime settings. `npm run bench` runs the same forwarder as a peer beside
// keyway and squid; this is the quicker look at the floor by itself. The forwarder does only what any
// intercepting proxy on this stack must (CONNECT, TLS both ways, undici upstream, one header set), so
// its figures are a floor for keyway's on this machine.
import { randomBytes } from 'node:crypto';
import { PROXY_ENV, PROXY_NODE_FLAGS } from '../src/cli/proxy-runtime.ts';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { directRoute, proxyRoute, type Tally } from './clients.ts';
import { startFloorChild } from './floor-child.ts';
import { latencyFigures, newHostFigures, throughputFigures } from './report.ts';
import { latencyTable, newHostTable, throughputTable } from './report-tables.ts';
import { FULL_PLAN, MAIN_HOST, newHost, rounds, s1Sequential, s2Parallel, s3Download, s4Upload, s5NewHosts, warmHost, type Context } from './scenarios.ts';
import { fixed } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

const plan = FULL_PLAN;
const log = (text = '') => process.stdout.write(`${text}\n`);

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const upstream = await startBenchUpstream(secret);
const hosts = [
  MAIN_HOST,
  ...Array.from({ length: plan.s5.warmupHosts }, (_, i) => warmHost(i)),
  ...Array.from({ length: plan.s5.hosts }, (_, i) => newHost(i)),
];
const floor = await startFloorChild({ hosts, secret, upstreamCaPath: TLS_FIXTURES.caPath });

const tally: Tally = { badStatus: 0, badBody: 0 };
const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 150_000, warmupMs: plan.warmupMs };
const routes = [directRoute(TLS_FIXTURES.ca, secret), proxyRoute('floor', floor.url, floor.caPem, TLS_FIXTURES.ca, floor.cpuMs)] as const;
const rss = () => fixed(floor.memory().rssMiB, 1);

log(
  `floor: the bare forwarder (bench/bare-forwarder.mjs), node ${PROXY_NODE_FLAGS.join(' ')}, ${Object.entries(PROXY_ENV)
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
log(newHostTable(newHostFigures(await s5NewHosts(routes, ctx, plan.s5))));
log(`RSS after s5: ${rss()} MiB`);

await floor.stop();
await upstream.close();
const bad = tally.badStatus + tally.badBody;
if (bad > 0) process.stderr.write(`floor: ${bad} unexpected responses (first: ${tally.first})\n`);
process.exit(bad > 0 ? 1 : 0);
