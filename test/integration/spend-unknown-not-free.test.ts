// Unknown is not free (issue 85, item 4), through the real proxy against loopback stand-ins that
// bill what they answer: an agent that names a model keyway has no price for (a made-up name) under
// a budget in dollars is priced at the fallback, the vendor's highest shipped price, and stopped by
// the budget; an answer that says nothing of its usage under a token budget is counted at its bytes
// as tokens (4 a token) and stopped too. The audit line, `keyway spend --json` and its budgets say
// which counts were fallback-priced or estimated. Controls: a priced model costs exactly its price;
// without a budget nothing changes (unpriced: no cost; no usage: unknown).
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openaiHandler } from '../helpers/model-standins/openai.ts';
import { sendJson, type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';
import { VENDOR_CEILINGS } from '../../src/spend/core/pricing.ts';

const KEY = `${CANARY}-unknown-key`;
const AGENT_KEY = 'unknown-agent-key-0123456789';
/** What the stand-in bills every answer: 1,000 tokens in, 1,000 out. */
const USAGE = { input: 1000, output: 1000 };
/** An answer that says nothing of its usage: a vendor (or gateway) that bills it all the same. */
const SILENT_TEXT = 'x'.repeat(3_996);
const GATEWAY = 'silent-gateway.example.test';

interface Answer {
  status: number;
  code: string | undefined;
  text: string;
}

async function chat(dispatcher: ProxyAgent, url: string, model: string): Promise<Answer> {
  const res = await request(url, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: 'Bearer keyway-placeholder' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const code = res.headers['x-keyway-error'];
  return { status: res.statusCode, code: typeof code === 'string' ? code : undefined, text: await res.body.text() };
}

describe('unknown is not free under a budget', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  const dispatchers: ProxyAgent[] = [];
  const outputs: string[] = [];
  const as = (id: string) => {
    const d = new ProxyAgent({ uri: `http://${id}:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(d);
    return d;
  };
  const openai = () => `https://api.openai.com:${standin.port}/v1/chat/completions`;
  const gateway = () => `https://${GATEWAY}:${standin.port}/v1/chat/completions`;
  const upstream = (host: string) => standin.seen.filter((s) => s.host === host && s.path === '/v1/chat/completions').length;
  const lines = (agent: string) => proxy.auditLines().filter((l) => l['agent'] === agent && l['usage'] !== undefined);
  /** Sends until refused (or `max` sent), each counted before the next; the statuses. */
  const until = async (agent: string, url: () => string, model: string, max: number) => {
    const dispatcher = as(agent);
    const statuses: number[] = [];
    for (let i = 0; i < max; i++) {
      const answer = await chat(dispatcher, url(), model);
      outputs.push(answer.text);
      statuses.push(answer.status);
      if (answer.status !== 200) {
        expect(answer.code).toBe('budget_exceeded');
        break;
      }
      await waitFor(() => (lines(agent).length === i + 1 ? true : undefined), `${agent}'s answer ${i + 1} counted`);
    }
    return statuses;
  };

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [
        // Bills, says nothing of its usage: a whole Chat Completions answer without `usage`.
        (req, res) => {
          if (req.host !== GATEWAY) return false;
          if (req.headers['authorization'] !== `Bearer ${KEY}`) return sendJson(res, 401, { error: { message: 'bad key' } });
          return sendJson(res, 200, {
            id: 'chatcmpl-1',
            object: 'chat.completion',
            model: 'gpt-4o',
            choices: [{ index: 0, message: { role: 'assistant', content: SILENT_TEXT } }],
          });
        },
        openaiHandler({ keys: [KEY], reply: { text: 'billed', usage: USAGE } }),
      ],
    });
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.openai.com': '127.0.0.1', [GATEWAY]: '127.0.0.1' } },
        grants: {
          openai: { type: 'bearer', domains: [`api.openai.com:${standin.port}`], secret: 'env:MODEL_KEY' },
          gateway: { type: 'bearer', domains: [`${GATEWAY}:${standin.port}`], secret: 'env:MODEL_KEY', model_api: 'openai' },
        },
        agents: Object.fromEntries(['spender', 'priced', 'quiet', 'free'].map((id) => [id, { key: 'env:AGENT_KEY' }])),
        budgets: [
          { agent: 'spender', limit: { usd: 2 }, per: 'day' },
          { agent: 'priced', limit: { usd: 0.05 }, per: 'day' },
          { agent: 'quiet', limit: { tokens: 3000 }, per: 'day' },
        ],
      },
    });
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close();
    await proxy?.stop();
    await standin?.close();
  });

  it('a made-up model under a USD budget costs the fallback and is stopped by the budget', async () => {
    const ceiling = VENDOR_CEILINGS.openai;
    const each = (USAGE.input * ceiling.input_per_mtok + USAGE.output * ceiling.output_per_mtok) / 1e6;
    // 0.75 a call at o1-pro's 150/600: 0, 0.75, 1.5 used before each of three calls, the fourth refused.
    expect(each).toBeCloseTo(0.75, 9);
    const sent = upstream('api.openai.com');
    expect(await until('spender', openai, 'gpt-made-up-9', 10)).toEqual([200, 200, 200, 429]);
    expect(upstream('api.openai.com') - sent, 'the refused call never went up').toBe(3);
    for (const line of lines('spender')) {
      expect(line).toMatchObject({ unpriced: true, price: 'fallback', usage: { model: 'gpt-made-up-9', input_tokens: 1000, output_tokens: 1000 } });
      expect(line['cost_usd']).toBeCloseTo(each, 9);
    }
  });

  it('a priced model costs exactly its price, no fallback mark (control)', async () => {
    // gpt-4o: 2.5 / 10 a million: 0.0125 a call; 0.05 reached after four.
    expect(await until('priced', openai, 'gpt-4o', 10)).toEqual([200, 200, 200, 200, 429]);
    for (const line of lines('priced')) {
      expect(line['cost_usd']).toBeCloseTo(0.0125, 12);
      expect(line['price']).toBeUndefined();
      expect(line['unpriced']).toBeUndefined();
    }
  });

  it('an answer with no usage under a token budget counts its bytes as tokens and is stopped by the budget', async () => {
    const sent = upstream(GATEWAY);
    // Each answer's body is a little over 4,000 bytes: over 1,000 output tokens, plus its request's bytes / 4.
    expect(await until('quiet', gateway, 'gpt-4o', 10)).toEqual([200, 200, 200, 429]);
    expect(upstream(GATEWAY) - sent).toBe(3);
    const requestBytes = Buffer.byteLength(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
    for (const line of lines('quiet')) {
      const usage = line['usage'] as Record<string, unknown>;
      expect(usage).toMatchObject({ model: 'gpt-4o', estimated: true, input_tokens: Math.ceil(requestBytes / 4) });
      expect(usage['output_tokens']).toBeGreaterThan(SILENT_TEXT.length / 4);
      expect(usage['unknown']).toBeUndefined();
      // Priced at the model's own price: gpt-4o is priced.
      expect(line['cost_usd']).toBeGreaterThan(0);
      expect(line['price']).toBeUndefined();
    }
  });

  it('without a budget nothing changes: a made-up model is unpriced with no cost, no usage is unknown (control)', async () => {
    const free = as('free');
    expect((await chat(free, openai(), 'gpt-made-up-9')).status).toBe(200);
    expect((await chat(free, gateway(), 'gpt-4o')).status).toBe(200);
    await waitFor(() => (lines('free').length === 2 ? true : undefined), "free's answers counted");
    const [unpriced, unknown] = lines('free');
    expect(unpriced).toMatchObject({ unpriced: true, usage: { model: 'gpt-made-up-9', input_tokens: 1000, output_tokens: 1000 } });
    expect(unpriced!['cost_usd']).toBeUndefined();
    expect(unpriced!['price']).toBeUndefined();
    expect(unknown!['usage']).toEqual({ model: 'gpt-4o', unknown: true });
    expect(unknown!['cost_usd']).toBeUndefined();
  });

  it('keyway spend --json flags the fallback-priced and estimated answers, in the rows and the budgets', async () => {
    // A running keyway adds what it counted to the store within a second.
    const report = await waitForAsync(
      async () => {
        const out = await proxy.cli(['spend', '--json']);
        outputs.push(out.stdout, out.stderr);
        const parsed = JSON.parse(out.stdout) as { rows: Array<Record<string, unknown>>; budgets: Array<Record<string, unknown>> };
        const row = parsed.rows.find((r) => r['agent'] === 'spender');
        return row !== undefined && row['fallback'] === 3 && parsed.rows.some((r) => r['agent'] === 'quiet' && r['estimated'] === 3) ? parsed : undefined;
      },
      'the spend records',
      10_000,
    );
    expect(report.rows.find((r) => r['agent'] === 'spender')).toMatchObject({ model: 'gpt-made-up-9', requests: 3, unpriced: 3, fallback: 3 });
    expect(report.rows.find((r) => r['agent'] === 'quiet')).toMatchObject({ requests: 3, unknown: 3, estimated: 3 });
    expect(report.rows.find((r) => r['agent'] === 'free' && r['model'] === 'gpt-made-up-9')).toMatchObject({ unpriced: 1, fallback: 0 });
    expect(report.budgets.find((b) => b['agent'] === 'spender')).toMatchObject({ fallback: 3, estimated: 0 });
    expect(report.budgets.find((b) => b['agent'] === 'quiet')).toMatchObject({ fallback: 0, estimated: 3 });
    const table = await proxy.cli(['spend']);
    outputs.push(table.stdout, table.stderr);
    expect(table.stdout).toContain('3 at the fallback price');
    expect(table.stdout).toContain('3 estimated from bytes');
    expect(table.stdout).toMatch(/priced at the fallback price/);
  });

  it('leaks no key', () => {
    expect(findLeak([...outputs, JSON.stringify(proxy.auditLines())].join('\n'), KEY)).toBeUndefined();
  });
});
