// Model spend metered on the real request path (issue 63): the official SDKs (Anthropic, OpenAI,
// Google) call the vendors' hosts through keyway, mapped to loopback stand-ins that report a
// different usage on every answer, whole and streamed; codex's Responses WebSocket too. What keyway
// counts (`keyway spend --json`, the audit lines, /metrics) must equal what the stand-ins reported,
// to the token and to 1e-6 USD at the configured prices. Then the hard cases: a stream the client
// abandons (counted for what was delivered), an answer that reports no usage (unknown, flagged), a
// model with no price (tokens counted, never priced at zero), and no real key in any output.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CANARY } from '../helpers/fixtures.ts';
import { adminClient } from '../helpers/admin-api.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { parseMetrics } from '../helpers/metrics-text.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { geminiHandler } from '../helpers/model-standins/gemini.ts';
import { openaiHandler, openaiWebSocketHandler } from '../helpers/model-standins/openai.ts';
import type { Usage } from '../helpers/model-standins/replies.ts';
import { type StandinRequest, type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';
import { connect as tlsConnect } from 'node:tls';
import type { connect as netConnect } from 'node:net';

const KEY = `${CANARY}-model-key`;
const AGENT_KEY = 'spend-agent-key-0123456789';
const PRICES = {
  'claude-test*': { input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3, cache_write_per_mtok: 3.75 },
  'gpt-test*': { input_per_mtok: 1.25, output_per_mtok: 10, cached_input_per_mtok: 0.125 },
  'gemini-test*': { input_per_mtok: 0.3, output_per_mtok: 2.5, cached_input_per_mtok: 0.075 },
} as const;
type Priced = keyof typeof PRICES;

/** One answer as the stand-in reported it, in keyway's meaning (spend/core/usage.ts). */
interface Reported {
  model: string;
  input: number;
  output: number;
  cached: number;
  written: number;
}

function costOf(r: Reported, price: (typeof PRICES)[Priced]): number {
  const p = price as { input_per_mtok: number; output_per_mtok: number; cached_input_per_mtok?: number; cache_write_per_mtok?: number };
  return (
    ((r.input - r.cached - r.written) * p.input_per_mtok +
      r.cached * (p.cached_input_per_mtok ?? p.input_per_mtok) +
      r.written * (p.cache_write_per_mtok ?? p.input_per_mtok) +
      r.output * p.output_per_mtok) /
    1e6
  );
}

const priceFor = (model: string) => PRICES[(Object.keys(PRICES) as Priced[]).find((glob) => model.startsWith(glob.slice(0, -1)))!];

describe('model spend, metered as the answers pass', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  const reported: Reported[] = [];
  const outputs: string[] = [];

  /** A usage of its own for each answer, recorded as the vendor's fields would add up in keyway's meaning. */
  const usageFor = (vendor: 'anthropic' | 'openai' | 'gemini') => (req: StandinRequest) => {
    const usage: Usage = { input: randomInt(50, 5000), output: randomInt(1, 900), cacheRead: randomInt(0, 40) };
    if (vendor === 'anthropic') usage.cacheWrite = randomInt(0, 30);
    const body = (req.json ?? {}) as { model?: string };
    const model = body.model ?? /models\/([^:/]+)/.exec(req.path)?.[1] ?? 'unknown';
    // Anthropic reports cache reads and writes beside input_tokens; OpenAI and Gemini within it.
    const input = vendor === 'anthropic' ? usage.input + (usage.cacheRead ?? 0) + (usage.cacheWrite ?? 0) : usage.input;
    reported.push({ model, input, output: usage.output, cached: usage.cacheRead ?? 0, written: usage.cacheWrite ?? 0 });
    return { usage };
  };

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [
        anthropicHandler({ host: 'api.anthropic.com', keys: [KEY], reply: usageFor('anthropic') }),
        openaiHandler({ host: 'api.openai.com', keys: [KEY], reply: usageFor('openai') }),
        geminiHandler({ host: 'generativelanguage.googleapis.com', keys: [KEY], reply: usageFor('gemini') }),
      ],
      websocketHandlers: [openaiWebSocketHandler({ host: 'api.openai.com', keys: [KEY], reply: usageFor('openai') })],
    });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1', 'api.openai.com': '127.0.0.1', 'generativelanguage.googleapis.com': '127.0.0.1' } },
        grants: {
          anthropic: { type: 'bearer', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY' },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
          gemini: { type: 'api_key', domains: [`generativelanguage.googleapis.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
        },
        agents: { coder: { key: 'env:AGENT_KEY' } },
        pricing: PRICES,
      },
    });
    agent = new ProxyAgent({ uri: `http://coder:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    await standin?.close();
  });

  const viaKeyway = ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher: agent } as never)) as unknown as typeof fetch;
  const base = (host: string) => `https://${host}:${standin.port}`;

  it('counts every answer of the three SDKs, whole and streamed, to the token and to 1e-6 USD', async () => {
    const anthropic = new Anthropic({ apiKey: 'keyway-placeholder', baseURL: base('api.anthropic.com'), fetch: viaKeyway, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'hi' }];
    await anthropic.messages.create({ model: 'claude-test-1', max_tokens: 20, messages });
    await anthropic.messages.stream({ model: 'claude-test-1', max_tokens: 20, messages }).finalMessage();

    const openai = new OpenAI({ apiKey: 'keyway-placeholder', baseURL: `${base('api.openai.com')}/v1`, fetch: viaKeyway, maxRetries: 0 });
    await openai.chat.completions.create({ model: 'gpt-test-1', messages });
    // Streamed without include_usage: keyway asks for it, and the SDK gets one more chunk it expects.
    const stream = await openai.chat.completions.create({ model: 'gpt-test-1', messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    await openai.responses.create({ model: 'gpt-test-2', input: 'hi' });
    const responses = await openai.responses.create({ model: 'gpt-test-2', input: 'hi', stream: true });
    for await (const _event of responses);

    const gemini = new GoogleGenAI({ apiKey: 'keyway-placeholder', httpOptions: { baseUrl: base('generativelanguage.googleapis.com') } });
    // @google/genai takes no fetch: it uses the global one, pointed at keyway for this call only.
    const saved = globalThis.fetch;
    globalThis.fetch = viaKeyway;
    try {
      await gemini.models.generateContent({ model: 'gemini-test-1', contents: 'hi' });
      for await (const _chunk of await gemini.models.generateContentStream({ model: 'gemini-test-1', contents: 'hi' }));
    } finally {
      globalThis.fetch = saved;
    }

    // The real key reached the stand-in; keyway's own answer lines carry usage and cost.
    expect(standin.seen.some((s) => JSON.stringify(s.headers).includes(KEY))).toBe(true);
    expect(reported.length).toBe(8);
    await until(() => proxy.auditLines().filter((l) => l['usage'] !== undefined).length === 8, 'the 8 metered audit lines');
    const lines = proxy.auditLines().filter((l) => l['usage'] !== undefined);
    for (const line of lines) {
      const usage = line['usage'] as { model: string; input_tokens: number };
      expect(usage.input_tokens).toBeGreaterThan(0);
      expect(typeof line['cost_usd']).toBe('number');
    }

    const want = sums(reported);
    const spend = await spendJson(proxy, outputs);
    expect(spend.totals).toMatchObject({
      requests: 8,
      input_tokens: want.input,
      output_tokens: want.output,
      cached_input_tokens: want.cached,
      cache_write_tokens: want.written,
      unpriced: 0,
      unknown: 0,
    });
    expect(Math.abs(spend.totals.cost_usd - want.cost)).toBeLessThan(1e-6);
    // The audit's lines add up to the same.
    const auditCost = lines.reduce((sum, l) => sum + (l['cost_usd'] as number), 0);
    expect(Math.abs(auditCost - want.cost)).toBeLessThan(1e-6);

    // /metrics: keyway_model_tokens_total and keyway_spend_usd_total equal the totals.
    const metrics = parseMetrics((await adminClient(proxy).call('GET', '/metrics')).text);
    outputs.push([...metrics].join('\n'));
    let tokensIn = 0;
    let usd = 0;
    for (const [key, value] of metrics) {
      if (key.startsWith('keyway_model_tokens_total{') && key.includes('kind="input"')) tokensIn += value;
      if (key.startsWith('keyway_spend_usd_total{')) usd += value;
    }
    expect(tokensIn).toBe(want.input);
    expect(Math.abs(usd - want.cost)).toBeLessThan(1e-6);
  });

  it("codex's Responses WebSocket: each response counted as it completes", async () => {
    const before = reported.length;
    const authority = `api.openai.com:${standin.port}`;
    const basic = Buffer.from(`coder:${AGENT_KEY}`).toString('base64');
    const tunnel = await openTunnel(proxy.port, authority, `Proxy-Authorization: Basic ${basic}\r\n`);
    const ca = readFileSync(proxy.caPath, 'utf8');
    const ws = new WebSocket(`wss://${authority}/v1/responses`, {
      headers: { authorization: 'Bearer keyway-placeholder' },
      createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.openai.com', ca })) as unknown as typeof netConnect,
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    let completed = 0;
    const done = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        const event = JSON.parse(String(data)) as { type: string };
        if (event.type === 'response.completed' && ++completed === 2) resolve();
      }),
    );
    ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test-3', input: [] }));
    await until(() => completed >= 1, 'the first response over the socket');
    ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test-3', input: [] }));
    await done;
    ws.close();
    await until(
      () => proxy.auditLines().some((l) => l['usage'] !== undefined && String(l['path']) === '/v1/responses' && l['status'] === 101),
      "the socket's audit line",
    );
    const line = proxy.auditLines().find((l) => l['status'] === 101)!;
    const two = reported.slice(before);
    expect(two.length).toBe(2);
    expect(line['usage']).toMatchObject({ input_tokens: two[0]!.input + two[1]!.input, output_tokens: two[0]!.output + two[1]!.output });
  });

  it('a stream the client abandons is counted for what was delivered; an answer with no usage is unknown; an unpriced model is flagged', async () => {
    // Hand-made answers on their own host: a stream that stops after its first delta and waits, and a
    // whole answer with no usage field.
    const hold: ServerResponse[] = [];
    const odd = await startStandinServer({
      handlers: [
        (req, res) => {
          if (req.path !== '/v1/messages') return false;
          const body = (req.json ?? {}) as { stream?: boolean; model?: string };
          if (body.model === 'claude-test-nousage') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model: body.model, content: [{ type: 'text', text: 'no usage here' }] }));
            return true;
          }
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const event = (name: string, data: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
          event('message_start', {
            type: 'message_start',
            message: { id: 'msg_2', type: 'message', role: 'assistant', model: body.model, content: [], usage: { input_tokens: 321, output_tokens: 1 } },
          });
          event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
          event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'The first words of a long answer' } });
          hold.push(res); // and nothing more, until the client leaves
          return true;
        },
      ],
    });
    const proxyOdd = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: { 'api.anthropic.com': '127.0.0.1' } },
        grants: { anthropic: { type: 'bearer', domains: [`api.anthropic.com:${odd.port}`], secret: 'env:MODEL_KEY' } },
        agents: { coder: { key: 'env:AGENT_KEY' } },
        pricing: { 'claude-test-priced*': PRICES['claude-test*'] },
      },
    });
    const oddAgent = new ProxyAgent({ uri: `http://coder:${AGENT_KEY}@127.0.0.1:${proxyOdd.port}`, requestTls: { ca: readFileSync(proxyOdd.caPath, 'utf8') } });
    try {
      const url = `https://api.anthropic.com:${odd.port}/v1/messages`;
      const post = (model: string, signal?: AbortSignal) =>
        undiciFetch(url, {
          method: 'POST',
          dispatcher: oddAgent,
          signal,
          headers: { 'content-type': 'application/json', authorization: 'Bearer keyway-placeholder' },
          body: JSON.stringify({ model, max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
        });
      const controller = new AbortController();
      const res = await post('claude-test-priced-1', controller.signal);
      const reader = res.body!.getReader();
      let seen = '';
      while (!seen.includes('first words')) seen += Buffer.from((await reader.read()).value ?? []).toString();
      controller.abort();
      await until(() => proxyOdd.auditLines().some((l) => (l['usage'] as { partial?: boolean } | undefined)?.partial === true), "the abandoned stream's line");
      const partial = proxyOdd.auditLines().find((l) => (l['usage'] as { partial?: boolean } | undefined)?.partial === true)!;
      const usage = partial['usage'] as { input_tokens: number; output_tokens: number };
      expect(usage.input_tokens).toBe(321);
      expect(usage.output_tokens).toBeGreaterThanOrEqual(1);
      expect(partial['cost_usd']).toBeGreaterThan(0);

      const none = await post('claude-test-nousage');
      expect(none.status).toBe(200);
      await none.text();
      await until(() => proxyOdd.auditLines().some((l) => (l['usage'] as { unknown?: boolean } | undefined)?.unknown === true), "the no-usage answer's line");

      // A model with no price: its tokens counted, no cost, flagged.
      const unpricedRes = await post('claude-unlisted-model');
      const reader2 = unpricedRes.body!.getReader();
      await reader2.read();
      await reader2.cancel();
      await until(() => proxyOdd.auditLines().some((l) => l['unpriced'] === true), "the unpriced model's line");
      const unpriced = proxyOdd.auditLines().find((l) => l['unpriced'] === true)!;
      expect(unpriced['cost_usd']).toBeUndefined();

      const spend = await spendJson(proxyOdd, outputs);
      expect(spend.totals).toMatchObject({ requests: 3, unknown: 1, unpriced: 1, partial: 2, input_tokens: 642 });
    } finally {
      for (const res of hold) res.destroy();
      await oddAgent.close();
      await proxyOdd.stop();
      await odd.close();
    }
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});

/** Waits for `cond` to hold (an audit line written as a response ends, the store's counts). */
function until(cond: () => boolean, what: string): Promise<true> {
  return waitFor(() => cond() || undefined, what, 10_000);
}

function sums(list: readonly Reported[]) {
  let cost = 0;
  const out = { input: 0, output: 0, cached: 0, written: 0, cost: 0 };
  for (const r of list) {
    out.input += r.input;
    out.output += r.output;
    out.cached += r.cached;
    out.written += r.written;
    cost += costOf(r, priceFor(r.model));
  }
  out.cost = cost;
  return out;
}

interface SpendJson {
  totals: { requests: number; input_tokens: number; output_tokens: number; cost_usd: number; unknown: number; unpriced: number; partial: number };
}

/** `keyway spend --json` once the running keyway has put its counts in the store (within a second). */
async function spendJson(proxy: TestProxy, outputs: string[]): Promise<SpendJson> {
  let last: SpendJson | undefined;
  const lines = () => proxy.auditLines().filter((l) => l['usage'] !== undefined).length;
  await waitForAsync(
    async () => {
      const run = await proxy.cli(['spend', '--json']);
      outputs.push(run.stdout, run.stderr);
      if (run.code !== 0) return undefined;
      last = JSON.parse(run.stdout) as SpendJson;
      return last.totals.requests >= lines() ? true : undefined;
    },
    'keyway spend to count every metered answer',
    15_000,
  );
  return last!;
}
