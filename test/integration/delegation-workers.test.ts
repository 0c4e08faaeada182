// Issue 89 under proxy.workers: 2: a delegated agent's spend and quota are counted on its parent's
// as exactly as the parent's own across the workers (the primary keeps the one spend ledger; quotas
// are reserved in the store). A real `keyway start` with two workers, the real CLI minting, a
// loopback Anthropic stand-in and a loopback upstream, requests on connections of their own (the
// kernel spreads them over the workers).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SRC_CLI, type ChildProxy, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const KEY = `${CANARY}-deleg-workers-key`;
const LEAD_KEY = 'lead-key-0123456789abcdef';
const USAGE = { input: 100, output: 50, cacheRead: 0 };
const PER_ANSWER = USAGE.input + USAGE.output;
const LIMIT = 1_500;
const IN_FLIGHT = 6;

describe('delegation under proxy.workers: 2', () => {
  let standin: StandinServer;
  let upstream: TestUpstream;
  let proxy: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  let ca: string;

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: { text: 'counted', usage: USAGE } })] });
    upstream = await startUpstream();
    home = writeChildHome(
      {
        grants: {
          anthropic: { type: 'api_key', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_KEY' },
        },
        agents: { lead: { key: 'env:LEAD_KEY', grant_limits: { api: { quota: { requests: '3/day' } } } } },
        budgets: [{ agent: 'lead', limit: { tokens: LIMIT }, per: 'day' }],
      },
      ['api.anthropic.com', 'api.example.test'],
    );
    const yamlPath = join(home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(yamlPath, 'utf8')) as { proxy: Record<string, unknown> };
    config.proxy['workers'] = 2;
    writeFileSync(yamlPath, stringify(config));
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), MODEL_KEY: KEY, API_KEY: 'api-secret-0123456789', LEAD_KEY });
    proxy = await startChildProxy({ cli: SRC_CLI, home, env });
    ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
  });
  afterAll(async () => {
    await proxy?.stop();
    await standin?.close();
    await upstream?.close();
  });

  const mint = async (name: string): Promise<string> => {
    const run = await runCli(['agents', 'delegate', 'lead', '--name', name, '--json', '--home', home], env);
    expect(run.code, run.stderr).toBe(0);
    const url = new URL((JSON.parse(run.stdout) as { proxy_url: string }).proxy_url);
    return `http://${url.username}:${url.password}@127.0.0.1:${proxy.port}`;
  };
  /** One request on a connection of its own. */
  const once = async (uri: string, send: (d: ProxyAgent) => Promise<{ status: number; code: string | undefined; text: string }>) => {
    const d = new ProxyAgent({ uri, requestTls: { ca } });
    try {
      return await send(d);
    } finally {
      await d.close();
    }
  };
  const ask = (d: ProxyAgent) =>
    request(`https://api.anthropic.com:${standin.port}/v1/messages`, {
      method: 'POST',
      dispatcher: d,
      headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-test-1', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
    }).then(async (res) => ({ status: res.statusCode, code: res.headers['x-keyway-error'] as string | undefined, text: await res.body.text() }));
  const get = (d: ProxyAgent) =>
    request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: d }).then(async (res) => ({
      status: res.statusCode,
      code: res.headers['x-keyway-error'] as string | undefined,
      text: await res.body.text(),
    }));
  /** Served on every worker: a free read answered (not 407) on a few connections. */
  const served = (uri: string) =>
    waitForAsync(async () => {
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          once(uri, (d) =>
            request(`https://api.anthropic.com:${standin.port}/v1/models`, { dispatcher: d }).then(async (r) => ({
              status: r.statusCode,
              code: undefined,
              text: await r.body.text(),
            })),
          ).catch(() => undefined),
        ),
      );
      return answers.every((a) => a !== undefined) ? true : undefined;
    }, 'the child to be served by both workers');

  it("a child's own --budget holds across the workers, though no worker's config names it", async () => {
    const run = await runCli(['agents', 'delegate', 'lead', '--name', 'thrifty', '--budget', 'tokens=300/day', '--json', '--home', home], env);
    expect(run.code, run.stderr).toBe(0);
    const url = new URL((JSON.parse(run.stdout) as { proxy_url: string }).proxy_url);
    const thrifty = `http://thrifty:${url.password}@127.0.0.1:${proxy.port}`;
    await served(thrifty);
    // One at a time: each answer is counted (by the primary) before the next is checked.
    for (let i = 0; i < 2; i++) expect((await once(thrifty, ask)).status).toBe(200);
    for (let i = 0; i < 4; i++) {
      const refused = await once(thrifty, ask);
      expect(refused.code).toBe('budget_exceeded');
      expect(JSON.parse(refused.text).error.message).toContain('model budget agents.thrifty.budget has used 300 of 300 tokens');
    }
  });

  it("a child's spend across the workers counts on its parent's budget, exactly, and the child is refused naming the parent", async () => {
    const kid = await mint('kid');
    await served(kid);
    let refused: { status: number; code: string | undefined; text: string } | undefined;
    for (let round = 0; round < 20 && refused === undefined; round++) {
      const answers = await Promise.all(Array.from({ length: IN_FLIGHT }, () => once(kid, ask)));
      for (const a of answers) if (a.status !== 200) expect(a.code, a.text).toBe('budget_exceeded');
      refused = answers.find((a) => a.status === 429);
    }
    expect(refused, 'the parent budget refused the child within 20 rounds').toBeDefined();
    expect(JSON.parse(refused!.text).error.message).toContain('model budget budgets[0] (agent "lead", a parent of this agent)');
    const passed = standin.seen.filter((s) => s.path === '/v1/messages').length;
    expect(passed * PER_ANSWER).toBeGreaterThanOrEqual(LIMIT);
    expect(passed * PER_ANSWER).toBeLessThanOrEqual(LIMIT + IN_FLIGHT * PER_ANSWER);
    // The parent is refused by its child's spend.
    expect((await once(`http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`, ask)).code).toBe('budget_exceeded');
    const used = await waitForAsync(
      async () => {
        const run = await runCli(['spend', '--json', '--home', home], env);
        const budget = (JSON.parse(run.stdout || '{}') as { budgets?: Array<{ name: string; used: number }> }).budgets?.find((b) => b.name === 'budgets[0]');
        return budget?.used === passed * PER_ANSWER ? budget.used : undefined;
      },
      "keyway spend's parent budget to hold every answer of the child",
      15_000,
    );
    expect(used).toBe(passed * PER_ANSWER);
    expect(findLeak(proxy.stdout() + proxy.stderr(), KEY)).toBeUndefined();
  });

  it("two children racing across the workers for their parent's last unit of quota: exactly one passes", async () => {
    const [a, b] = [await mint('racer-a'), await mint('racer-b')];
    await served(a);
    await served(b);
    const lead = `http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`;
    expect((await once(lead, get)).status).toBe(200);
    expect((await once(lead, get)).status).toBe(200);
    const seen = upstream.seen.length;
    const results = await Promise.all([a, b, a, b, a, b, a, b].map((uri) => once(uri, get)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 429, 429, 429, 429, 429, 429, 429]);
    for (const r of results) if (r.status === 429) expect(r.code).toBe('quota_exhausted');
    expect(upstream.seen.length).toBe(seen + 1);
  });
});
