// Limits on agents made with the CLI or the admin API (not only in the config): `keyway agents add
// --rate … --quota-requests …`, `keyway agents limits ID …|--none`, POST/PATCH /api/agents with
// `limits`. The running proxy takes a change within a second, as any store change.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

describe('limits on store agents', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  const agents: ProxyAgent[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: 'limits-secret' }] });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    for (const a of agents) await a.close();
    await proxy?.stop();
    await upstream?.close();
  });

  function via(url: string): ProxyAgent {
    const agent = new ProxyAgent({ uri: url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    agents.push(agent);
    return agent;
  }

  async function statuses(agent: ProxyAgent, n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: agent });
      await res.body.dump();
      out.push(res.statusCode);
    }
    return out;
  }

  /** Polls until the proxy answers as expected (a store change reaches it within a second or so). */
  async function until(check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('the change did not reach the proxy in time');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('agents add with --rate and --quota-requests limits the agent; agents limits changes and clears them', async () => {
    const added = await proxy.cli(['agents', 'add', 'cli-bot', '--rate', '2/h', '--burst', '2', '--quota-requests', '100/day', '--json']);
    expect(added.code, added.stderr).toBe(0);
    const url = (JSON.parse(added.stdout) as { proxy_url: string }).proxy_url;
    // Until the proxy has the agent it serves anyone as the anonymous agent (this is the first
    // agent), and a connection keeps the agent it was opened as.
    await until(async () => proxy.running.counts().agents === 1);
    const bot = via(url);
    expect(await statuses(bot, 3)).toEqual([200, 200, 429]);
    const show = await proxy.cli(['agents', 'show', 'cli-bot']);
    expect(show.stdout).toMatch(/2\/h \(burst 2\)/);
    expect(show.stdout).toMatch(/\d+\/100 today/);

    expect((await proxy.cli(['agents', 'limits', 'cli-bot', '--none'])).code).toBe(0);
    await until(async () => (await statuses(bot, 1))[0] === 200);
    expect(await statuses(bot, 3)).toEqual([200, 200, 200]);
    expect((await proxy.cli(['agents', 'show', 'cli-bot'])).stdout).toContain('limits: none');
  });

  it('refuses limits that do not parse, naming the flag or key, and changes nothing', async () => {
    const bad = await proxy.cli(['agents', 'add', 'bad-bot', '--rate', 'lots']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('rate');
    expect(bad.stderr).toContain('60/min');
    expect((await proxy.cli(['agents', 'show', 'bad-bot'])).code).not.toBe(0);
    const burstAlone = await proxy.cli(['agents', 'limits', 'cli-bot', '--burst', '5']);
    expect(burstAlone.stderr).toContain('burst sizes a rate');
    const api = await admin.call('POST', '/api/agents', { id: 'api-bad', limits: { quota: { requests: '-3/day' } } });
    expect(api.status).toBe(400);
    expect(api.text).toContain('limits: quota.requests');
  });

  it('the admin API sets limits on create and with PATCH, and null clears them', async () => {
    const created = await admin.call('POST', '/api/agents', { id: 'api-bot', limits: { rate: '1/h' } });
    expect(created.status, created.text).toBe(201);
    const bot = via((created.body as { proxy_url: string }).proxy_url);
    await until(async () => (await statuses(bot, 1))[0] === 200);
    expect(await statuses(bot, 1)).toEqual([429]);
    const listed = await admin.call('GET', '/api/agents');
    const mine = (listed.body as { agents: Array<{ id: string; limits: Array<{ rate: string }> }> }).agents.find((a) => a.id === 'api-bot');
    expect(mine?.limits[0]?.rate).toBe('1/h');
    expect((await admin.call('PATCH', '/api/agents/api-bot', { limits: null })).status).toBe(200);
    await until(async () => (await statuses(bot, 1))[0] === 200);
    // A config agent's limits are the config's.
    expect((await admin.call('PATCH', '/api/agents/nobody', { limits: { rate: '1/s' } })).status).toBe(404);
  });
});
