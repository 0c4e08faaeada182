import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89: a delegated agent's requests count against its parent's rates and quotas, each as the
// config gives them to the parent, through the real proxy to a real loopback upstream. The limits
// sit on the parent's grant `api`; `ping` is free of them, so a child is seen served without
// spending any of them.

const API = 'api.example.test';
const PING = 'other.example.test';

describe('delegation: quotas and rates count against every ancestor', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const dispatchers: ProxyAgent[] = [];
  const keys = {
    LEAD_KEY: 'lead-key-0123456789abcdef',
    BOSS_KEY: 'boss-key-0123456789abcdef',
    RATER_KEY: 'rater-key-0123456789abcdef',
    MULTI_KEY: 'multi-key-0123456789abcdef',
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: keys,
      config: {
        agents: {
          lead: { key: 'env:LEAD_KEY', grants: ['api', 'ping'], grant_limits: { api: { quota: { requests: '4/day' } } } },
          boss: { key: 'env:BOSS_KEY', grants: ['api', 'ping'], grant_limits: { api: { quota: { requests: '3/day' } } } },
          rater: { key: 'env:RATER_KEY', grants: ['api', 'ping'], grant_limits: { api: { rate: '2/h', burst: 2 } } },
          // A quota on all its requests, whatever the grant.
          multi: { key: 'env:MULTI_KEY', grants: ['api', 'ping'], limits: { quota: { requests: '3/day' } } },
        },
      },
      grants: [
        { id: 'api', type: 'bearer', domains: [API], secret: CANARY },
        { id: 'ping', type: 'bearer', domains: [PING], secret: 'ping-secret-0123' },
      ],
    });
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close();
    await proxy?.stop();
    await upstream?.close();
  });

  const via = (url: string): ProxyAgent => {
    const u = new URL(url);
    const d = new ProxyAgent({
      uri: `http://127.0.0.1:${proxy.port}`,
      token: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.bundlePath, 'utf8') },
    });
    dispatchers.push(d);
    return d;
  };
  const parent = (id: keyof typeof ids) => via(`http://${id}:${keys[ids[id]]}@127.0.0.1:${proxy.port}`);
  const ids = { lead: 'LEAD_KEY', boss: 'BOSS_KEY', rater: 'RATER_KEY', multi: 'MULTI_KEY' } as const;
  const get = async (d: ProxyAgent, host = API): Promise<{ status: number; body: string }> => {
    const res = await request(`https://${host}:${upstream.port}/echo`, { dispatcher: d });
    return { status: res.statusCode, body: await res.body.text() };
  };
  /** A child minted through the real CLI, once the proxy serves it (on `ping`, which no limit counts). */
  const child = async (parentId: string, name: string): Promise<ProxyAgent> => {
    const minted = await proxy.cli(['agents', 'delegate', parentId, '--name', name, '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const d = via((JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url);
    await waitForAsync(async () => ((await get(d, PING).catch(() => undefined))?.status === 200 ? true : undefined), `${name} to be served`);
    return d;
  };

  it("a child's requests take from its parent's quota: once spent, both are refused, naming the parent", async () => {
    const worker = await child('lead', 'worker');
    const lead = parent('lead');
    expect((await get(worker)).status).toBe(200);
    expect((await get(lead)).status).toBe(200);
    expect((await get(worker)).status).toBe(200);
    expect((await get(lead)).status).toBe(200);
    const seen = upstream.seen.length;
    const refused = await get(worker);
    expect(refused.status).toBe(429);
    const error = JSON.parse(refused.body).error;
    expect(error.code).toBe('quota_exhausted');
    expect(error.message).toContain('agent "lead" on grant "api" (a parent of this agent) has used its 4 requests');
    expect(refused.body).not.toContain(CANARY);
    expect((await get(lead)).status).toBe(429);
    expect(upstream.seen.length).toBe(seen);
    const line = await waitForAsync(
      async () => proxy.auditLines().findLast((l) => l['agent'] === 'worker' && l['code'] === 'quota_exhausted'),
      "the child's refusal",
    );
    expect(line).toMatchObject({ chain: ['lead', 'worker'], limit: 'agent_grant' });
  });

  it("two children racing their parent's last unit of quota: exactly one passes", async () => {
    const boss = parent('boss');
    const [a, b] = [await child('boss', 'racer-a'), await child('boss', 'racer-b')];
    expect((await get(boss)).status).toBe(200);
    expect((await get(boss)).status).toBe(200);
    const seen = upstream.seen.length;
    const results = await Promise.all([a, b, a, b, a, b].map((d) => get(d)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 429, 429, 429, 429, 429]);
    expect(upstream.seen.length).toBe(seen + 1);
    expect((await get(boss)).status).toBe(429);
  });

  it("a child's requests take from its parent's rate: the parent is then limited too", async () => {
    const kid = await child('rater', 'rate-kid');
    expect((await get(kid)).status).toBe(200);
    expect((await get(kid)).status).toBe(200);
    const refused = await get(kid);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'rate_limited' });
    expect(JSON.parse(refused.body).error.message).toContain('agent "rater" on grant "api" (a parent of this agent) is over its rate');
    expect((await get(parent('rater'))).status).toBe(429);
  });

  it("a child cannot dodge its parent's quota on another grant: an agent's quota counts every grant", async () => {
    // Being served took one request (on ping) of the parent's three.
    const kid = await child('multi', 'multi-kid');
    expect((await get(kid)).status).toBe(200);
    expect((await get(kid, PING)).status).toBe(200);
    for (const host of [API, PING]) {
      const refused = await get(kid, host);
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).error.message).toContain('agent "multi" (a parent of this agent) has used its 3 requests');
    }
    expect((await get(parent('multi'), PING)).status).toBe(429);
  });
});
