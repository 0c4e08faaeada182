import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, seedGrants } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';
import { report, scale } from './scale.ts';

// Held bodies (issue 21): an agent floods parallel ~1 MiB POSTs at a client_credentials grant
// whose upstream reads every body and never answers. Each such body could be replayed after a 401,
// so keyway once kept every one of them in memory: 500 of them took it from 86 to 1,205 MiB RSS.
// The bytes held for replay are now bounded overall and per agent, and an agent's requests in
// flight are bounded too (past it: 429 rate_limited). keyway runs as its own process, so the RSS
// read here is keyway's alone; another agent's request must still be served meanwhile.

const FLOOD = scale(300, 500);
const BODY = randomBytes(1024 * 1024 - 512); // just under REPLAY_LIMIT: every one is a replay candidate
/**
 * keyway's peak RSS during the flood must stay under this. Measured on this machine with 300
 * bodies (HTTP/1.1, from a resting ~98 MiB): before the budgets 789 MiB peak (489 after the
 * clients left); after them 216-244 MiB, about what the same flood on a bearer grant (never
 * kept) costs. Generous, so a noisy machine does not fail it; a return to "keep them all" does.
 */
const PEAK_RSS_MIB = 400;
const FLOOD_KEY = 'flood-key-0123456789abcdef';
const CALM_KEY = 'calm-key-0123456789abcdef';

describe('held bodies: a flood of replayable uploads against a stalled upstream', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let keyway: ChildProxy;
  let ca: string;
  /** Responses the stalling upstream holds open, ended at the close. */
  const stalled: ServerResponse[] = [];
  let stalledBytes = 0;

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({
      // The helper has read the whole body when it calls this: /stall then never answers.
      handler: (req, res, body) => {
        if (req.url !== '/stall') return false;
        stalledBytes += body?.length ?? 0;
        stalled.push(res);
        return true;
      },
    });
    const home = makeHome();
    const masterKey = randomBytes(32).toString('base64');
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: {
          upstream_ca: [TLS_FIXTURES.caPath],
          allow_networks: ['127.0.0.0/8'],
          hosts: { 'api.example.test': '127.0.0.1' },
        },
        providers: { testauth: { token_url: auth.tokenUrl, client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET' } },
        agents: {
          flood: { key: 'env:FLOOD_KEY', grants: ['machine'] },
          calm: { key: 'env:CALM_KEY', grants: ['machine'] },
        },
      }),
    );
    await seedGrants(home, masterKey, [
      {
        id: 'machine',
        type: 'client_credentials',
        domains: ['api.example.test'],
        provider: 'testauth',
        secret: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
      },
    ]);
    keyway = await startChildProxy({
      home,
      env: cleanEnv({ KEYWAY_MASTER_KEY: masterKey, TEST_CLIENT_SECRET: CLIENT_SECRET, FLOOD_KEY, CALM_KEY }),
    });
    ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
  });
  afterAll(async () => {
    for (const res of stalled) res.destroy();
    expect(await keyway?.stop()).toBe(0);
    await upstream?.close();
    await auth?.close();
  });

  const agentUri = (id: string, key: string) => `http://${id}:${key}@127.0.0.1:${keyway.port}`;

  it(`keeps RSS bounded under ${FLOOD} parallel 1 MiB POSTs, serves another agent meanwhile, and recovers after the flood leaves`, async () => {
    const pid = keyway.child.pid!;
    const url = `https://api.example.test:${upstream.port}`;
    const calm = new ProxyAgent({ uri: agentUri('calm', CALM_KEY), requestTls: { ca } });
    // Warm-up: the token, the leaf, an upstream connection; then the resting figure.
    const warm = await request(`${url}/echo`, { dispatcher: calm });
    await warm.body.text();
    expect(warm.statusCode).toBe(200);
    const rssBefore = rssMiB(pid);
    let rssPeak = rssBefore;
    const floodStart = performance.now();
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 100);

    // HTTP/1.1, a connection each: over HTTP/2 a burst of early answers (429, or any refusal given
    // before the body is read) to streams still uploading ends undici's session with
    // ENHANCE_YOUR_CALM, a separate problem (see the issue notes) this suite is not about.
    const flood = new ProxyAgent({ uri: agentUri('flood', FLOOD_KEY), requestTls: { ca }, connections: FLOOD, allowH2: false });
    const abort = new AbortController();
    const statuses: Record<string, number> = {};
    const count = (key: string) => (statuses[key] = (statuses[key] ?? 0) + 1);
    const sent = Array.from({ length: FLOOD }, () =>
      request(`${url}/stall`, {
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/octet-stream' },
        dispatcher: flood,
        signal: abort.signal,
        headersTimeout: slack(60_000, 240_000),
      }).then(
        async (res) => {
          count(String(res.statusCode));
          await res.body.text();
        },
        (err: Error) => void count(err.name === 'AbortError' || abort.signal.aborted ? 'aborted' : `${err.name}: ${err.message}`),
      ),
    );

    // Until every request has been let through to the upstream or refused (or 40 s on an idle machine,
    // stretched by the measured load: the flood's 300 handshakes wait for CPU), then a few seconds
    // more for the bodies on their way up.
    const headsAtUpstream = () => upstream.seen.filter((r) => r.url === '/stall').length;
    const deadline = Date.now() + slack(40_000, 150_000);
    while (headsAtUpstream() + (statuses['429'] ?? 0) < FLOOD && Date.now() < deadline) await sleep(100);
    await sleep(3_000);
    const settleMs = Math.round(performance.now() - floodStart);

    // Another agent, on the same grant, while the flood is held.
    const t0 = performance.now();
    const other = await request(`${url}/echo`, { dispatcher: calm, headersTimeout: 20_000, bodyTimeout: 20_000 });
    await other.body.text();
    const otherMs = Math.round(performance.now() - t0);
    expect(other.statusCode).toBe(200);
    const rssHeld = rssMiB(pid);

    // The flood leaves: every byte and slot it held must come back.
    abort.abort();
    await Promise.all(sent);
    await flood.destroy();
    clearInterval(sampler);
    await sleep(1_000);
    const rssAfter = rssMiB(pid);

    // No leak: the flooding agent gets full service again, a 1 MiB POST included.
    const again = new ProxyAgent({ uri: agentUri('flood', FLOOD_KEY), requestTls: { ca } });
    const after = await request(`${url}/upload`, { method: 'POST', body: BODY, dispatcher: again });
    const afterBody = await after.body.text();
    await again.close();
    await calm.close();

    report('held-bodies', {
      flood: FLOOD,
      held_by_upstream: stalled.length,
      upstream_heads: headsAtUpstream(),
      upstream_body_bytes_mib: Math.round(upstream.seen.reduce((n, r) => n + r.bodyBytes, 0) / 1024 / 1024),
      upstream_bytes_read_mib: Math.round(stalledBytes / 1024 / 1024),
      statuses,
      other_agent_ms: otherMs,
      settle_ms: settleMs,
      rss_mib: { before: rssBefore, peak: rssPeak, while_held: rssHeld, after: rssAfter },
    });
    expect(rssPeak).toBeLessThan(PEAK_RSS_MIB);
    // Past its requests in flight the agent was told so (429), not cut off; the rest went upstream.
    expect(headsAtUpstream() + (statuses['429'] ?? 0), JSON.stringify(statuses)).toBe(FLOOD);
    expect(statuses['429']).toBe(FLOOD - 256);
    expect(after.statusCode, afterBody).toBe(200);
  }, 300_000); // the flood's handshakes alone take 10-20 s on these two shared cores, minutes on a busy machine
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return Math.round(kb / 102.4) / 10;
}
