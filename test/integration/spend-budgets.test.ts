// Model budgets (config budgets:, issue 63) on the real request path: a token budget lets requests
// through while under its limit and refuses the next with 429 budget_exceeded, nothing sent upstream,
// another agent unaffected; `over: approve` holds the request for a person instead; warn_at tells a
// person once through approvals.notify; a model API route keyway cannot meter is refused while a
// budget applies. Then proxy.workers: 2 with concurrent requests: the count is exact, and the
// overshoot past the budget is at most what was in flight.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const KEY = `${CANARY}-budget-key`;
const AGENT_KEY = 'budget-agent-key-0123456789';
/** Every answer: 100 input and 50 output tokens, 150 counted by a token budget. */
const USAGE = { input: 100, output: 50, cacheRead: 0 };

interface Answer {
  status: number;
  code: string | undefined;
  retryAfter: string | undefined;
  text: string;
}

async function ask(dispatcher: ProxyAgent, port: number, model = 'claude-test-1'): Promise<Answer> {
  const res = await request(`https://api.anthropic.com:${port}/v1/messages`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const header = (name: string) => (typeof res.headers[name] === 'string' ? (res.headers[name] as string) : undefined);
  return { status: res.statusCode, code: header('x-keyway-error'), retryAfter: header('retry-after'), text: await res.body.text() };
}

const inferences = (standin: StandinServer) => standin.seen.filter((s) => s.path === '/v1/messages').length;

describe('model budgets on one keyway', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  const outputs: string[] = [];
  const notified: unknown[] = [];
  const dispatchers: ProxyAgent[] = [];
  const as = (id: string) => {
    const d = new ProxyAgent({ uri: `http://${id}:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(d);
    return d;
  };

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [
        (req, res) => {
          if (req.host !== 'notify.example.test') return false;
          notified.push(req.json);
          res.writeHead(204).end();
          return true;
        },
        anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: { text: 'counted', usage: USAGE } }),
      ],
    });
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1', 'notify.example.test': '127.0.0.1' } },
        approvals: { notify: `https://notify.example.test:${standin.port}/hook` },
        grants: { anthropic: { type: 'api_key', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } } },
        agents: { bot: { key: 'env:AGENT_KEY' }, other: { key: 'env:AGENT_KEY' }, careful: { key: 'env:AGENT_KEY' } },
        budgets: [
          { agent: 'bot', limit: { tokens: 600 }, per: 'day', warn_at: 0.5 },
          { agent: 'careful', limit: { tokens: 150 }, per: 'day', over: 'approve' },
        ],
      },
    });
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close();
    await proxy?.stop();
    await standin?.close();
  });

  it('refuses the request after the budget is used with 429 budget_exceeded, sends nothing, and leaves another agent alone', async () => {
    const bot = as('bot');
    // 0, 150, 300 and 450 tokens counted before each: all under 600.
    for (let i = 0; i < 4; i++) {
      const answer = await ask(bot, standin.port);
      expect(answer.status, answer.text).toBe(200);
      // The next check must see this answer's count: it is in the ledger once the exchange closes.
      await waitFor(
        () => proxy.auditLines().filter((l) => l['agent'] === 'bot' && l['usage'] !== undefined).length === i + 1 || undefined,
        'the answer counted',
      );
    }
    const sent = inferences(standin);
    const refused = await ask(bot, standin.port);
    outputs.push(refused.text);
    expect(refused.status).toBe(429);
    expect(refused.code).toBe('budget_exceeded');
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    const body = JSON.parse(refused.text) as { error: { code: string; message: string; hint: string } };
    expect(body.error.message).toContain('budgets[0]');
    expect(body.error.hint).toMatch(/^retry after \d{4}-\d\d-\d\dT00:00:00\.000Z$/);
    expect(inferences(standin), 'nothing went upstream').toBe(sent);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'budget_exceeded'), 'the refusal line');
    expect(line).toMatchObject({ agent: 'bot', decision: 'deny', status: 429, budget: 'budgets[0]' });

    // Another agent has no budget: it goes on.
    expect((await ask(as('other'), standin.port)).status).toBe(200);

    // warn_at 0.5: told once, when 300 of 600 were used, through approvals.notify.
    await waitFor(() => (notified.length > 0 ? true : undefined), 'the warning');
    expect(notified).toHaveLength(1);
    expect(notified[0]).toMatchObject({ type: 'keyway.budget.warning', budget: { name: 'budgets[0]', unit: 'tokens', limit: 600 } });
  });

  it('over: approve holds the request for a person instead of refusing it', async () => {
    const careful = as('careful');
    expect((await ask(careful, standin.port)).status).toBe(200);
    await waitFor(() => proxy.auditLines().find((l) => l['agent'] === 'careful' && l['usage'] !== undefined), 'the first answer counted');
    const sent = inferences(standin);
    const held = ask(careful, standin.port);
    const pending = await waitForAsync(async () => {
      const list = await proxy.cli(['approvals', 'list', '--json']);
      outputs.push(list.stdout, list.stderr);
      const rows = (JSON.parse(list.stdout || '{"approvals":[]}') as { approvals: Array<{ id: string; rule: string; agent: string }> }).approvals;
      return rows.find((r) => r.agent === 'careful');
    }, 'the held request in the approvals list');
    expect(pending.rule).toBe('budgets[1]');
    expect(inferences(standin), 'held: nothing sent yet').toBe(sent);
    const approved = await proxy.cli(['approvals', 'approve', pending.id]);
    outputs.push(approved.stdout, approved.stderr);
    expect(approved.code, approved.stderr).toBe(0);
    expect((await held).status).toBe(200);
    expect(inferences(standin)).toBe(sent + 1);
  });

  it('refuses a model route keyway cannot meter while a budget applies, and lets free ones through', async () => {
    const bot = as('bot');
    const batches = await request(`https://api.anthropic.com:${standin.port}/v1/messages/batches`, {
      method: 'POST',
      dispatcher: bot,
      headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder' },
      body: '{"requests":[]}',
    });
    const text = await batches.body.text();
    outputs.push(text);
    expect(batches.statusCode).toBe(429);
    expect(batches.headers['x-keyway-error']).toBe('budget_unmeterable');
    expect(text).toContain('cannot meter');
    const count = await request(`https://api.anthropic.com:${standin.port}/v1/messages/count_tokens`, {
      method: 'POST',
      dispatcher: bot,
      headers: { 'content-type': 'application/json', 'x-api-key': 'keyway-placeholder' },
      body: JSON.stringify({ model: 'claude-test-1', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await count.body.text();
    expect(count.statusCode).toBe(200);
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8'), JSON.stringify(notified)].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});

describe('a model budget under proxy.workers: 2', () => {
  it('counts exactly across the workers, and overshoots by at most what was in flight', async () => {
    const standin = await startStandinServer({
      handlers: [anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: { text: 'counted', usage: USAGE } })],
    });
    const LIMIT = 3_000;
    const IN_FLIGHT = 6;
    const home = writeChildHome(
      {
        grants: { anthropic: { type: 'api_key', domains: [`api.anthropic.com:${standin.port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } } },
        agents: { bot: { key: 'env:AGENT_KEY' } },
        budgets: [{ agent: 'bot', limit: { tokens: LIMIT }, per: 'day' }],
      },
      ['api.anthropic.com'],
    );
    // writeChildHome's proxy keys, and two workers.
    const yamlPath = join(home, 'config', 'keyway.yaml');
    const { parse, stringify } = await import('yaml');
    const config = parse(readFileSync(yamlPath, 'utf8')) as { proxy: Record<string, unknown> };
    config.proxy['workers'] = 2;
    (await import('node:fs')).writeFileSync(yamlPath, stringify(config));
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), MODEL_KEY: KEY, AGENT_KEY });
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    const ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
    try {
      let refusedAt: number | undefined;
      // Rounds of IN_FLIGHT requests at once, each on a connection of its own (the kernel spreads
      // them over the workers), until one is refused; bounded in rounds.
      for (let round = 0; round < 20 && refusedAt === undefined; round++) {
        const answers = await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            const d = new ProxyAgent({ uri: `http://bot:${AGENT_KEY}@127.0.0.1:${child.port}`, requestTls: { ca } });
            try {
              return await ask(d, standin.port);
            } finally {
              await d.close();
            }
          }),
        );
        for (const a of answers) if (a.status !== 200) expect(a.code, a.text).toBe('budget_exceeded');
        if (answers.some((a) => a.status === 429)) refusedAt = round;
      }
      expect(refusedAt, 'the budget refused within 20 rounds').toBeDefined();
      const passed = inferences(standin);
      const counted = passed * (USAGE.input + USAGE.output);
      // Every request before the round that crossed the limit passed; the crossing round adds at most IN_FLIGHT.
      expect(counted).toBeGreaterThanOrEqual(LIMIT);
      expect(counted).toBeLessThanOrEqual(LIMIT + IN_FLIGHT * (USAGE.input + USAGE.output));
      // And the store's count is exact: keyway spend equals what the stand-in answered.
      const spend = await waitForAsync(
        async () => {
          const run = await runCli(['spend', '--json', '--home', home], env);
          const json = JSON.parse(run.stdout || '{}') as { totals?: { requests: number; input_tokens: number; output_tokens: number } };
          return json.totals?.requests === passed ? json.totals : undefined;
        },
        'keyway spend to count every answer',
        15_000,
      );
      expect(spend).toMatchObject({ requests: passed, input_tokens: passed * USAGE.input, output_tokens: passed * USAGE.output });
      expect(findLeak(child.stdout() + child.stderr(), KEY)).toBeUndefined();
    } finally {
      await child.stop();
      await standin.close();
    }
  });
});
