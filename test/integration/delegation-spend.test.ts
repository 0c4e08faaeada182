// Issue 89: a delegated agent's model spend counts against its own budget (`agents delegate
// --budget`) and every ancestor's, on the real request path: the real CLI mints, the real proxy
// meters a loopback Anthropic stand-in's answers (150 tokens each), `keyway spend` reads the counts.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const KEY = `${CANARY}-deleg-spend-key`;
const LEAD_KEY = 'lead-key-0123456789abcdef';
const BOSS_KEY = 'boss-key-0123456789abcdef';
/** Every answer: 100 input and 50 output tokens, 150 counted by a token budget. */
const USAGE = { input: 100, output: 50, cacheRead: 0 };

interface Answer {
  status: number;
  code: string | undefined;
  text: string;
}

describe('delegation: spend counts against the child and every ancestor', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  const dispatchers: ProxyAgent[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: { text: 'counted', usage: USAGE } })] });
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, LEAD_KEY, BOSS_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1' } },
        grants: { anthropic: { type: 'api_key', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } } },
        agents: { lead: { key: 'env:LEAD_KEY' }, boss: { key: 'env:BOSS_KEY' }, root: { key: 'env:LEAD_KEY', delegation: { depth: 2 } } },
        budgets: [
          { agent: 'lead', limit: { tokens: 750 }, per: 'day' },
          { agent: 'boss', limit: { tokens: 300 }, per: 'day' },
          { agent: 'root', limit: { tokens: 900 }, per: 'day' },
          { agent: '*', limit: { tokens: 1_000_000 }, per: 'day' },
        ],
      },
    });
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close();
    await proxy?.stop();
    await standin?.close();
  });

  const via = (id: string, key: string): ProxyAgent => {
    const d = new ProxyAgent({
      uri: `http://127.0.0.1:${proxy.port}`,
      token: `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
    });
    dispatchers.push(d);
    return d;
  };
  const ask = async (d: ProxyAgent): Promise<Answer> => {
    const res = await request(`https://api.anthropic.com:${standin.port}/v1/messages`, {
      method: 'POST',
      dispatcher: d,
      headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-test-1', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const code = res.headers['x-keyway-error'];
    return { status: res.statusCode, code: typeof code === 'string' ? code : undefined, text: await res.body.text() };
  };
  /** Asks, then waits for the answer's count (its audit line), so the next check sees it. */
  const spend = async (d: ProxyAgent, agent: string): Promise<void> => {
    const before = proxy.auditLines().filter((l) => l['agent'] === agent && l['usage'] !== undefined).length;
    const answer = await ask(d);
    expect(answer.status, answer.text).toBe(200);
    await waitFor(() => proxy.auditLines().filter((l) => l['agent'] === agent && l['usage'] !== undefined).length === before + 1 || undefined, 'counted');
  };
  /** A child minted through the real CLI, once the proxy serves it (a free read: it spends nothing). */
  const child = async (parent: string, name: string, ...flags: string[]): Promise<ProxyAgent> => {
    const minted = await proxy.cli(['agents', 'delegate', parent, '--name', name, ...flags, '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    const url = new URL((JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url);
    const d = via(url.username, decodeURIComponent(url.password));
    await waitForAsync(async () => {
      const res = await request(`https://api.anthropic.com:${standin.port}/v1/models`, { dispatcher: d }).catch(() => undefined);
      await res?.body.dump();
      return res === undefined ? undefined : true;
    }, `${name} to be served`);
    return d;
  };
  const budgets = async (): Promise<Array<{ name: string; used: number; limit: number }>> => {
    const out = await proxy.cli(['spend', '--json']);
    expect(out.code, out.stderr).toBe(0);
    return (JSON.parse(out.stdout) as { budgets: Array<{ name: string; used: number; limit: number }> }).budgets;
  };
  const used = async (name: string): Promise<number | undefined> => (await budgets()).find((b) => b.name === name)?.used;

  it("counts a child's spend on its own --budget and on its parent's; the child is refused at its own, then at the parent's", async () => {
    const worker = await child('lead', 'worker', '--budget', 'tokens=300/day');
    await spend(worker, 'worker');
    await spend(worker, 'worker');
    const sent = standin.seen.filter((s) => s.path === '/v1/messages').length;
    const own = await ask(worker);
    expect(own.status).toBe(429);
    expect(own.code).toBe('budget_exceeded');
    expect(JSON.parse(own.text).error.message).toContain('model budget agents.worker.budget has used 300 of 300 tokens');
    expect(own.text).not.toContain(CANARY);
    // `keyway spend` shows the child's spend in the parent's budget and in its own.
    await waitForAsync(async () => ((await used('budgets[0]')) === 300 ? true : undefined), "the parent's budget to hold the child's 300 tokens");
    expect(await used('agents.worker.budget')).toBe(300);

    // The parent's own spend and a second child's add to the same count; at 750 the children are refused, naming the parent.
    const lead = via('lead', LEAD_KEY);
    await spend(lead, 'lead');
    const helper = await child('lead', 'helper');
    await spend(helper, 'helper');
    await spend(helper, 'helper');
    const refused = await ask(helper);
    expect(refused.status).toBe(429);
    expect(refused.code).toBe('budget_exceeded');
    expect(JSON.parse(refused.text).error.message).toContain('model budget budgets[0] (agent "lead", a parent of this agent) has used 750 of 750 tokens');
    expect((await ask(lead)).status).toBe(429);
    expect(standin.seen.filter((s) => s.path === '/v1/messages').length).toBe(sent + 3);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['agent'] === 'helper' && l['code'] === 'budget_exceeded'), 'the refusal line');
    expect(line).toMatchObject({ chain: ['lead', 'helper'], budget: 'budgets[0]', status: 429 });
  });

  it("refuses the parent once its child has spent the parent's budget", async () => {
    const spender = await child('boss', 'spender');
    await spend(spender, 'spender');
    await spend(spender, 'spender');
    const boss = await ask(via('boss', BOSS_KEY));
    expect(boss.status).toBe(429);
    expect(boss.code).toBe('budget_exceeded');
    expect(JSON.parse(boss.text).error.message).toContain('model budget budgets[1] has used 300 of 300 tokens');
  });

  it('refuses a --budget that does not read as one, naming it, and mints nothing', async () => {
    for (const bad of [
      'usd=0x10/day',
      'usd=1e3/day',
      'usd=-1/day',
      'usd=0/day',
      'usd=2/week',
      'usd=2/day/x',
      'usd=2',
      ' usd=2/day',
      'USD=2/day',
      'tokens=1.5/day',
      'eur=2/day',
    ]) {
      const out = await proxy.cli(['agents', 'delegate', 'lead', '--name', 'wide', '--budget', bad]);
      expect(out.code, bad).toBe(2);
      expect(out.stderr, bad).toContain('--budget');
    }
    const agents = JSON.parse((await proxy.cli(['agents', 'list', '--json'])).stdout) as Array<{ id: string }>;
    expect(agents.map((a) => a.id)).not.toContain('wide');
  });

  it("the admin API takes a budget in the short form or the config's, and refuses selectors", async () => {
    const admin = adminClient(proxy);
    const short = await admin.call('POST', '/api/agents/lead/delegate', { name: 'api-short', budget: 'usd=2/day' });
    expect(short.status, short.text).toBe(201);
    expect((short.body as { budget: unknown }).budget).toEqual({ limit: { usd: 2 }, per: 'day', over: 'refuse' });
    const long = await admin.call('POST', '/api/agents/lead/delegate', { name: 'api-long', budget: { limit: { tokens: 1000 }, per: 'hour', warn_at: 0.5 } });
    expect(long.status, long.text).toBe(201);
    const selector = await admin.call('POST', '/api/agents/lead/delegate', { name: 'api-wide', budget: { agent: 'boss', limit: { usd: 2 }, per: 'day' } });
    expect(selector.status).toBe(400);
    expect(selector.text).toContain('budget');
    const listed = await budgets();
    expect(listed.map((b) => b.name)).toEqual(expect.arrayContaining(['agents.api-short.budget', 'agents.api-long.budget']));
  });

  it("a grandchild's spend counts on its parent's own budget and its root's; agent \"*\" counts it under each of the three", async () => {
    const mid = await child('root', 'mid', '--depth', '1', '--budget', 'tokens=450/day');
    const grand = await child('mid', 'grand');
    await spend(grand, 'grand');
    await spend(grand, 'grand');
    await spend(grand, 'grand');
    const refused = await ask(grand);
    expect(refused.code).toBe('budget_exceeded');
    expect(JSON.parse(refused.text).error.message).toContain('model budget agents.mid.budget (agent "mid", a parent of this agent) has used 450 of 450 tokens');
    expect((await ask(mid)).code).toBe('budget_exceeded');
    // The root still has room (450 of 900): its own request goes.
    await spend(via('root', LEAD_KEY), 'root');
    const rows = await waitForAsync(async () => {
      const list = await budgets();
      return list.find((b) => b.name === 'budgets[2]')?.used === 600 ? list : undefined;
    }, "the root's budget to hold its grandchild's spend and its own");
    const each = (rows as Array<{ name: string; used: number; agent?: string }>).filter((b) => b.name === 'budgets[3]');
    expect(Object.fromEntries(each.filter((b) => ['root', 'mid', 'grand'].includes(b.agent ?? '')).map((b) => [b.agent, b.used]))).toEqual({
      root: 600,
      mid: 450,
      grand: 450,
    });
  });
});
