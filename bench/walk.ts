// The walk of one injected request: which of keyway's source files it enters, from the client's
// CONNECT to the answer, measured rather than read off the code. keyway runs in this process; after
// a warm-up request (first-use work: module loads, the host's leaf), V8's precise coverage counts
// the functions one more request calls, on a new connection (CONNECT, TLS, one GET with a bearer
// credential injected, the leak guard on the answer). The README's architecture section lists them.
//
//   node bench/walk.ts
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProxyAgent, request } from 'undici';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { startProxy } from '../test/helpers/keyway.ts';
import { startUpstream } from '../test/helpers/upstream.ts';

const SRC = resolve(fileURLToPath(new URL('../src', import.meta.url)));

const upstream = await startUpstream();
const proxy = await startProxy({ grants: [{ id: 'walk', type: 'bearer', domains: ['api.example.test'], secret: 'walk-secret-0123456789' }] });
const ca = [readFileSync(proxy.caPath, 'utf8'), TLS_FIXTURES.ca];
const once = async () => {
  const agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca } });
  try {
    const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: agent });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  } finally {
    await agent.close();
  }
};
const session = new Session();
session.connect();
try {
  await once();
  await once();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: false });
  await session.post('Profiler.takePreciseCoverage'); // counts from here
  await once();
  // The audit line is written once the response closes: let the writer's batch run.
  await new Promise((r) => setTimeout(r, 200));
  const { result } = await session.post('Profiler.takePreciseCoverage');
  const entered = result
    .filter((script) => script.url.startsWith(`file://${SRC}/`))
    .filter((script) => script.functions.some((f) => f.ranges.some((r) => r.count > 0)))
    .map((script) => relative(SRC, fileURLToPath(script.url)))
    .sort();
  if (process.env.WALK_DEBUG)
    for (const script of result.filter((s) => s.url.includes(process.env.WALK_DEBUG!)))
      console.log(script.url, JSON.stringify(script.functions.filter((f) => f.ranges[0]!.count > 0).map((f) => [f.functionName, f.ranges[0]!.count])));
  const proxyFiles = entered.filter((f) => f.startsWith('proxy/'));
  console.log(entered.join('\n'));
  console.log(`\n${entered.length} files entered (${proxyFiles.length} in src/proxy/)`);
} finally {
  session.disconnect();
  await proxy.stop();
  await upstream.close();
}
