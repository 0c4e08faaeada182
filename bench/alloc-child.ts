// Bytes allocated per request in keyway's own process under s2's load (64 kept-alive connections,
// small GETs), by V8's sampling heap profiler over the inspector, by allocating function and the
// nearest keyway function on its stack (dist/ built with KEYWAY_BUNDLE_SOURCEMAP=1 maps to src/).
// bench/alloc.ts measures one connection in one process; this is the real child, as s2 drives it,
// and with --floor the bare forwarder after it, for the difference: young garbage sets how often
// scavenges run, and so how many requests in flight are promoted (docs/perf/breakdown.md).
//
// --survivors leaves out what a young-generation collection freed. Read it with care: a
// mark-compact frees dead young objects too, and those stay in, so it reads high whenever
// mark-compacts are frequent. V8's own count is --trace-gc-nvp's `promoted` (bench/ab.ts
// --a-node-args=--trace-gc-nvp). --count: IncomingMessage and ServerResponse objects alive (after a
// full GC) halfway through the load: more than the 64 in flight means requests are kept past their end.
//
// --model=none|metered: s2m's load instead (bench/model-ab.ts), small Messages POSTs on the grant
// with model_api: none or the metered one; run once each, the difference is what metering an answer
// allocates under load (bench/alloc.ts --model measures it on one sequential connection).
//
//   node bench/alloc-child.ts [--seconds=5] [--top=40] [--survivors] [--floor] [--count] [--node-args=A,B] [--a=CHECKOUT] [--model=SIDE]
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { keywayRoute, type Tally } from './clients.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient } from './keyway-bench.ts';
import { startKeywayChild } from './keyway-child.ts';
import { startFloorChild } from './floor-child.ts';
import type { InspectorClient } from './inspector.ts';
import { MODEL_GRANTS, messagesLoad, modelGrantSteps, type ModelSide } from './model-api.ts';
import { distSourceMapper } from './profile-map.ts';
import { FULL_PLAN as PLAN, s2Parallel as s2Load, type Context } from './scenarios.ts';
import { startBenchUpstream } from './upstream.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const seconds = Math.min(30, Math.max(1, Number(arg('seconds') ?? 5)));
const top = Math.min(200, Math.max(1, Number(arg('top') ?? 40)));
const dir = resolve(arg('a') ?? '.');
const all = !process.argv.includes('--survivors');
const floor = process.argv.includes('--floor');
/** --count: how many requests and responses are alive (after a full GC) in the middle of the load. */
const count = process.argv.includes('--count');
/** --node-args=A,B: node options for keyway, after its own (bench/ab.ts --a-node-args alike). */
const nodeArgs = arg('node-args')?.split(',') ?? [];
const modelSide = arg('model') as ModelSide | undefined;
if (modelSide !== undefined && !(modelSide in MODEL_GRANTS)) {
  console.error('--model is none, metered or budget');
  process.exit(2);
}

interface SamplingNode {
  selfSize: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children: SamplingNode[];
}

const sourceOf = distSourceMapper();
const frameName = (f: SamplingNode['callFrame']): { name: string; own: boolean } => {
  const src = sourceOf(f.url, f.lineNumber, f.columnNumber);
  if (src !== undefined) return { name: `${f.functionName || '(anonymous)'} ${src}`, own: true };
  // keyway's own dist/ without source maps: the chunk and line.
  const own = !f.url.includes('/node_modules/') && /\/dist\/.+\.js$/.test(f.url);
  const where = f.url
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/dist\//, 'dist/')
    .replace(/^node:internal\//, 'node:');
  return { name: `${f.functionName || '(anonymous)'} ${where}${where ? `:${f.lineNumber + 1}` : ''}`, own };
};
function bySite(node: SamplingNode, out: Map<string, number>, keyway: string | undefined): void {
  const { name, own } = frameName(node.callFrame);
  const nearest = own ? name : keyway;
  if (node.selfSize > 0) {
    const key = own ? name : `${name} <- ${nearest ?? '(no keyway frame)'}`;
    out.set(key, (out.get(key) ?? 0) + node.selfSize);
  }
  for (const child of node.children) bySite(child, out, nearest);
}

const secret = `kwb-${randomBytes(24).toString('hex')}`;
const upstream = await startBenchUpstream(secret);
const hosts = benchHosts(PLAN);
const tally: Tally = { badStatus: 0, badBody: 0 };

/** s2 through `url` for `seconds`, sampled in the process `inspector` reaches; prints its sites. */
async function measure(name: string, url: string, caPem: string, inspector: () => Promise<InspectorClient>): Promise<void> {
  const route = keywayRoute(url, caPem, TLS_FIXTURES.ca);
  const ctx = (ms: number): Context => ({ upstreamPort: upstream.port, tally, deadline: performance.now() + 120_000, warmupMs: ms });
  const answers = { answers: 0 };
  const s2Parallel: typeof s2Load = (r, c, load) =>
    modelSide === undefined ? s2Load(r, c, load) : s2Load(r, c, load, MODEL_GRANTS[modelSide].host, messagesLoad(r, c, false, answers));
  await s2Parallel(route, ctx(1000), { connections: 64, bounds: { maxCount: 200_000, maxMs: 3000 } });
  const session = await inspector();
  await session.send('HeapProfiler.enable');
  await session.send('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: all,
  });
  const load = s2Parallel(route, ctx(0), { connections: 64, bounds: { maxCount: 200_000, maxMs: seconds * 1000 } });
  if (count) {
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    for (const name of ['IncomingMessage', 'ServerResponse']) {
      const proto = await session.send<{ result: { objectId: string } }>('Runtime.evaluate', {
        expression: `process.getBuiltinModule('node:http').${name}.prototype`,
      });
      const found = await session.send<{ objects: { objectId: string } }>('Runtime.queryObjects', { prototypeObjectId: proto.result.objectId });
      const size = await session.send<{ result: { value: number } }>('Runtime.callFunctionOn', {
        objectId: found.objects.objectId,
        functionDeclaration: 'function () { return this.length; }',
        returnByValue: true,
      });
      console.log(`${name} alive in the middle of the load: ${size.result.value}`);
    }
  }
  const result = await load;
  const { profile } = await session.send<{ profile: { head: SamplingNode } }>('HeapProfiler.stopSampling');
  session.close();
  const sites = new Map<string, number>();
  bySite(profile.head, sites, undefined);
  const requests = result.requests;
  const total = [...sites.values()].reduce((a, b) => a + b, 0);
  const what = all ? 'allocated' : 'outliving a scavenge';
  console.log(
    `${name}: ${requests} requests; ${what}: ${(total / requests / 1024).toFixed(2)} KiB per request (bad answers: ${tally.badStatus + tally.badBody})`,
  );
  for (const [site, bytes] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(bytes / requests).toFixed(0).padStart(6)} B  ${site}`);
}

try {
  const base = keywayBenchOptions({
    plan: PLAN,
    secret,
    hosts,
    oauth: newOAuthClient(),
    tokenUrl: 'https://127.0.0.1:9/unused',
    nodeArgs,
    cli: join(dir, 'dist/cli/main.js'),
  });
  const child = await startKeywayChild({
    ...base,
    ...(modelSide === undefined
      ? {}
      : { hosts: [...base.hosts, ...Object.values(MODEL_GRANTS).map((g) => g.host)], setup: [...(base.setup ?? []), ...modelGrantSteps(secret)] }),
    inspect: true,
  });
  try {
    await measure('keyway', child.url, child.caPem, () => child.inspector());
  } finally {
    await child.stop();
  }
  if (floor) {
    const bare = await startFloorChild({ hosts, secret, upstreamCaPath: TLS_FIXTURES.caPath, inspect: true });
    try {
      await measure('floor', bare.url, bare.caPem, () => bare.inspector());
    } finally {
      await bare.stop();
    }
  }
} finally {
  await upstream.close();
}
