// Bytes allocated per injected request, by V8's sampling heap profiler (objects collected by either
// GC counted too): a request-path change should not add garbage, which the CPU figures only show
// as GC time under load. keyway runs in this process; after a warm-up, N sequential GETs with a
// bearer credential injected go through one kept-alive connection (HTTP/1.1 inside the tunnel).
// The client (undici, in this process too) is measured alike on a direct run to the upstream, and
// subtracted. Compare two checkouts by running this in each.
//
//   node bench/alloc.ts [--requests=3000] [--sites] [--h2]
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Agent, ProxyAgent, request } from 'undici';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { startProxy } from '../test/helpers/keyway.ts';
import { startBenchUpstream } from './upstream.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const N = Math.min(50_000, Math.max(100, Number(arg('requests') ?? 3000)));

interface SamplingNode {
  selfSize: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children: SamplingNode[];
}
/** With --sites: where keyway's own code allocates, by function, per request. */
const sites = process.argv.includes('--sites');
function bySite(node: SamplingNode, out: Map<string, number>): Map<string, number> {
  const { functionName, url, lineNumber } = node.callFrame;
  if (url.includes('/src/')) {
    const key = `${functionName || '(anonymous)'} ${url.slice(url.indexOf('/src/') + 1)}:${lineNumber + 1}`;
    out.set(key, (out.get(key) ?? 0) + node.selfSize);
  }
  for (const child of node.children) bySite(child, out);
  return out;
}
const total = (node: SamplingNode): number => node.selfSize + node.children.reduce((sum, child) => sum + total(child), 0);

// s2's upstream and answer (bench/upstream.ts /small): a small JSON body with no secret echoed in
// it, so the leak guard searches it and finds nothing, as on s2.
const SECRET = 'alloc-secret-0123456789';
const HOST = 'api.bench.test';
const upstream = await startBenchUpstream(SECRET);
const proxy = await startProxy({
  grants: [{ id: 'alloc', type: 'bearer', domains: [HOST], secret: SECRET }],
  config: { proxy: { hosts: { [HOST]: '127.0.0.1' } } },
});
const ca = [readFileSync(proxy.caPath, 'utf8'), TLS_FIXTURES.ca];
const session = new Session();
session.connect();

async function measure(dispatcher: Agent | ProxyAgent, url: string, headers?: Record<string, string>): Promise<number> {
  const one = async () => {
    const res = await request(url, { dispatcher, headers });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
  for (let i = 0; i < 1000; i++) await one();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < N; i++) await one();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const head = profile.head as SamplingNode;
  if (sites) {
    const top = [...bySite(head, new Map())].sort((a, b) => b[1] - a[1]).slice(0, 25);
    for (const [site, bytes] of top) console.log(`${(bytes / N).toFixed(0).padStart(6)} B  ${site}`);
  }
  return total(head) / N;
}

try {
  // HTTP/1.1 inside the tunnel and direct, as s2 speaks (undici asks for h2 by default); --h2 for s7's.
  const allowH2 = process.argv.includes('--h2');
  const through = new ProxyAgent({ uri: proxy.url, requestTls: { ca }, connections: 1, allowH2 });
  const direct = new Agent({ connect: { ca, servername: HOST }, connections: 1, allowH2 });
  const viaKeyway = await measure(through, `https://${HOST}:${upstream.port}/small`);
  const directOnly = await measure(direct, `https://127.0.0.1:${upstream.port}/small`, { authorization: `Bearer ${SECRET}` });
  await through.close();
  await direct.close();
  console.log(`allocated per request: ${(viaKeyway / 1024).toFixed(1)} KiB through keyway (client, keyway and upstream in one process)`);
  console.log(`allocated per request: ${(directOnly / 1024).toFixed(1)} KiB direct (client and upstream)`);
  console.log(`keyway's share: ${((viaKeyway - directOnly) / 1024).toFixed(1)} KiB per request`);
} finally {
  session.disconnect();
  await proxy.stop();
  await upstream.close();
}
