// Made-up model names (issue 85, finding 4): an agent names a model in a Gemini path or a JSON body
// with 8,000 characters, or a new name per request. keyway keeps at most MAX_MODEL_NAMES distinct
// names per agent per UTC day in its records, audit lines and metrics (the rest count as `_other`),
// and its memory stays flat; ordinary names keep counting exactly.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MODEL_NAMES, OTHER_MODEL } from '../../src/spend/core/model-name.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { geminiHandler, openaiHandler, type StandinServer, startStandinServer } from '../helpers/model-standins/index.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const KEY = `${CANARY}-names-key`;
const AGENT_KEY = 'names-agent-key-0123456789';
const MIB = 1024 * 1024;

describe('model names are bounded: made-up and 8,000-character names', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let bot: ProxyAgent;

  beforeAll(async () => {
    standin = await startStandinServer({ handlers: [geminiHandler({ keys: [KEY] }), openaiHandler({ keys: [KEY] })] });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'generativelanguage.googleapis.com': '127.0.0.1', 'api.openai.com': '127.0.0.1' } },
        grants: {
          gemini: { type: 'api_key', domains: [`generativelanguage.googleapis.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
        },
        agents: { bot: { key: 'env:AGENT_KEY' }, calm: { key: 'env:AGENT_KEY' } },
        budgets: [{ agent: '*', limit: { tokens: 1_000_000_000 }, per: 'day' }],
      },
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    bot = new ProxyAgent({ uri: `http://bot:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca }, connections: 8 });
  });
  afterAll(async () => {
    await bot?.close();
    await proxy?.stop();
    await standin?.close();
  });

  const gemini = (agent: ProxyAgent, model: string) =>
    agent
      .request({
        origin: `https://generativelanguage.googleapis.com:${standin.port}`,
        path: `/v1beta/models/${model}:generateContent`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
      })
      .then(async (res) => ({ status: res.statusCode, text: await res.body.text() }));
  const chat = (agent: ProxyAgent, model: string) =>
    agent
      .request({
        origin: `https://api.openai.com:${standin.port}`,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
      })
      .then(async (res) => ({ status: res.statusCode, text: await res.body.text() }));

  interface Row {
    agent: string | null;
    model: string | null;
    requests: number;
    input_tokens: number;
    output_tokens: number;
    unpriced: number;
  }
  /** `keyway spend --json`'s rows for `agent` (read from the store), once they count `requests` answers. */
  async function rowsOf(agent: string, requests: number): Promise<Row[]> {
    return waitForAsync(async () => {
      const run = await proxy.cli(['spend', '--json', '--agent', agent]);
      if (run.code !== 0) return undefined;
      const rows = (JSON.parse(run.stdout) as { rows: Row[] }).rows.filter((r) => r.agent === agent);
      return rows.reduce((sum, r) => sum + r.requests, 0) >= requests ? rows : undefined;
    }, `keyway spend to count ${requests} answers of ${agent}`);
  }

  it('holds the store to the cap, names the bound on the audit lines, and keeps RSS flat', async () => {
    const rssBefore = process.memoryUsage().rss;
    const lines = proxy.auditLines().length;
    const started = Date.now();
    const sent: Array<Promise<{ status: number; text: string }>> = [];
    for (let i = 0; i < 300; i++) {
      const long = `m${i}-${'x'.repeat(8_000)}`;
      const made = `made-up-${i}`;
      // In a Gemini path (the stand-in names it back as modelVersion), and in a JSON body.
      sent.push(gemini(bot, i % 2 === 0 ? long : made), chat(bot, i % 2 === 0 ? made : long));
      if (sent.length >= 16) for (const res of sent.splice(0)) expect((await res).status).toBe(200);
    }
    for (const res of sent) expect((await res).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(60_000);
    await waitFor(() => (proxy.auditLines().length >= lines + 600 ? true : undefined), 'the audit lines of 600 requests');

    const named = proxy
      .auditLines()
      .slice(lines)
      .map((l) => (l['usage'] as { model?: string | null } | undefined)?.model);
    expect(named).toHaveLength(600);
    for (const model of named) expect(model === OTHER_MODEL || (typeof model === 'string' && model.length <= 128), String(model).slice(0, 40)).toBe(true);
    expect(new Set(named).size).toBeLessThanOrEqual(MAX_MODEL_NAMES + 1);
    expect(named.filter((m) => m === OTHER_MODEL).length).toBeGreaterThanOrEqual(600 - MAX_MODEL_NAMES);

    const mine = await rowsOf('bot', 600);
    const models = new Set(mine.map((r) => r.model));
    expect(models.size).toBeLessThanOrEqual(MAX_MODEL_NAMES + 1);
    for (const model of models) expect(model === null || model.length <= 128).toBe(true);
    // Every request still counted, none lost to the bound.
    expect(mine.reduce((sum, r) => sum + r.requests, 0)).toBe(600);

    // What grew before: each made-up name a store record holding the whole name (13 MB after 3,000
    // such requests), rewritten whole on every flush. Now a few dozen records.
    const store = statSync(join(proxy.home, 'data', 'store.json')).size;
    expect(store, `store.json is ${store} bytes`).toBeLessThan(256 * 1024);
    // And no blow-up: the test's own process holds keyway, the stand-in, the client and the audit lines
    // it re-reads, so this bounds gigabytes (the finding's 8.4 GB worker), not megabytes.
    const grown = process.memoryUsage().rss - rssBefore;
    expect(grown, `RSS grew ${(grown / MIB).toFixed(1)} MiB`).toBeLessThan(300 * MIB);
  });

  it('counts ordinary names exactly (control)', async () => {
    const calm = new ProxyAgent({ uri: `http://calm:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const lines = proxy.auditLines().length;
      for (let i = 0; i < 5; i++) {
        expect((await gemini(calm, 'gemini-2.5-flash')).status).toBe(200);
        expect((await chat(calm, 'gpt-4o-mini')).status).toBe(200);
      }
      await waitFor(() => (proxy.auditLines().length >= lines + 10 ? true : undefined), 'the control lines');
      const calmLines = proxy.auditLines().slice(lines);
      expect(calmLines.map((l) => (l['usage'] as { model: string }).model).sort()).toEqual([
        ...Array(5).fill('gemini-2.5-flash'),
        ...Array(5).fill('gpt-4o-mini'),
      ]);
      for (const l of calmLines) expect(typeof l['cost_usd']).toBe('number');
      const by = Object.fromEntries((await rowsOf('calm', 10)).map((r) => [r.model, r]));
      expect(by['gemini-2.5-flash']).toMatchObject({ requests: 5, input_tokens: 55, output_tokens: 35, unpriced: 0 });
      expect(by['gpt-4o-mini']).toMatchObject({ requests: 5, input_tokens: 55, output_tokens: 35, unpriced: 0 });
    } finally {
      await calm.close();
    }
  });
});
