// Bytes allocated per injected request, by V8's sampling heap profiler (objects collected by either
// GC counted too): a request-path change should not add garbage, which the CPU figures only show
// as GC time under load. keyway runs in this process; after a warm-up, N sequential GETs with a
// bearer credential injected go through one kept-alive connection (HTTP/1.1 inside the tunnel).
// The client (undici, in this process too) is measured alike on a direct run to the upstream, and
// subtracted. Compare two checkouts by running this in each.
// With --model (issue 63): s2m's load instead, small POSTs to Anthropic's /v1/messages on two
// grants with the same secret, one metered (model_api: anthropic) and one not (model_api: none):
// the difference is what metering an answer allocates.
//
//   node bench/alloc.ts [--requests=3000] [--sites] [--h2] [--model]
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Agent, ProxyAgent, request } from 'undici';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { startProxy } from '../test/helpers/keyway.ts';
import { ANSWER_MODEL, MESSAGES_PATH, MODEL_GRANTS } from './model-api.ts';
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
const model = process.argv.includes('--model');
const MODEL_HOSTS = { none: MODEL_GRANTS.none.host, metered: MODEL_GRANTS.metered.host } as const;
const upstream = await startBenchUpstream(SECRET);
const proxy = await startProxy({
  grants: [{ id: 'alloc', type: 'bearer', domains: [HOST], secret: SECRET }],
  config: {
    proxy: { hosts: Object.fromEntries([HOST, ...Object.values(MODEL_HOSTS)].map((h) => [h, '127.0.0.1'])) },
    grants: Object.fromEntries(
      Object.entries(MODEL_HOSTS).map(([side, host]) => [
        `model-${side}`,
        { type: 'bearer', domains: [host], secret: 'env:ALLOC_SECRET', model_api: side === 'none' ? 'none' : 'anthropic' },
      ]),
    ),
  },
  env: { ALLOC_SECRET: SECRET },
});
/** s2m's request: a short Messages call, as the Anthropic SDK sends it. */
const MESSAGES = {
  method: 'POST' as const,
  headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
  body: JSON.stringify({ model: ANSWER_MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'Say ok.' }] }),
};
const ca = [readFileSync(proxy.caPath, 'utf8'), TLS_FIXTURES.ca];
const session = new Session();
session.connect();

async function measure(dispatcher: Agent | ProxyAgent, url: string, headers?: Record<string, string>): Promise<number> {
  const options = model ? { ...MESSAGES, headers: { ...MESSAGES.headers, ...headers } } : { headers };
  const one = async () => {
    const res = await request(url, { dispatcher, ...options });
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
  if (model) {
    const none = await measure(through, `https://${MODEL_HOSTS.none}:${upstream.port}${MESSAGES_PATH}`);
    const metered = await measure(through, `https://${MODEL_HOSTS.metered}:${upstream.port}${MESSAGES_PATH}`);
    await through.close();
    console.log(
      `allocated per request: ${(none / 1024).toFixed(2)} KiB unmetered, ${(metered / 1024).toFixed(2)} KiB metered (client, keyway and upstream in one process)`,
    );
    console.log(`metering's share: ${((metered - none) / 1024).toFixed(2)} KiB per answer`);
    process.exit(0);
  }
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
