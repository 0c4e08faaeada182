// What a metered request's body says, read as the vendor reads it (issue 85, items 2 and 6), through
// the real proxy with real clients (undici over HTTP/1.1, node:http2) against a loopback stand-in
// that bills honestly and reads bodies leniently (any case, the last of two members, a BOM): under a
// budget, a body a lenient server would read differently is refused with budget_unmeterable and the
// stand-in never gets it whole; a request left before its answer (or its usage) is counted at its
// floor, never less than what the stand-in bills for it. No real key in any output.
import type { ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_FLOOR } from '../../src/spend/core/request-facts.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type StandinRequest, type StandinServer, sendJson, sseEvent, startSse, startStandinServer } from '../helpers/model-standins/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = `${CANARY}-body-key`;
const AGENT_KEY = 'body-agent-key-0123456789';
const PRICE = { input_per_mtok: 3, output_per_mtok: 15 };
const HOSTS = ['api.anthropic.com', 'api.openai.com', 'generativelanguage.googleapis.com'] as const;

interface Bill {
  input: number;
  output: number;
}

/**
 * The stand-in's bill for a request it read: its prompt's characters / 4 as input, and as output
 * what it writes, which for a client that left is its cap (it goes on writing; the default when
 * none is given), as a vendor bills a request left before its answer.
 */
function billOf(req: StandinRequest): Bill {
  const json = req.json as Record<string, unknown>;
  const prompt = JSON.stringify(json['messages'] ?? json['input'] ?? json['contents'] ?? '');
  const config = json['generationConfig'] as { maxOutputTokens?: number } | undefined;
  const cap = (json['max_tokens'] ?? json['max_completion_tokens'] ?? json['max_output_tokens'] ?? config?.maxOutputTokens) as number | undefined;
  const api = req.host === 'api.anthropic.com' ? 'anthropic' : req.host === 'api.openai.com' ? 'openai' : 'gemini';
  return { input: Math.ceil(prompt.length / 4), output: cap ?? DEFAULT_OUTPUT_FLOOR[api] };
}

describe('a metered request body, read as the vendor reads it', () => {
  let standin: StandinServer;
  let proxy: TestProxy;
  let bot: ProxyAgent;
  let free: ProxyAgent;
  const held: ServerResponse[] = [];
  const bills: Bill[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    standin = await startStandinServer({
      handlers: [
        (req, res) => {
          const hold = req.headers['x-test-hold'];
          bills.push(billOf(req));
          if (hold === 'head') {
            held.push(res);
            return true;
          }
          if (hold === 'first') {
            // One delta, then nothing more: the client leaves after it.
            startSse(res);
            res.write(sseEvent({ object: 'chat.completion.chunk', model: 'gpt-test-1', choices: [{ index: 0, delta: { content: 'Hel' } }] }));
            held.push(res);
            return true;
          }
          // A whole answer that reports the bill as usage (the controls).
          const bill = bills.at(-1)!;
          if (req.host === 'api.anthropic.com')
            return sendJson(res, 200, { type: 'message', model: 'claude-test-1', content: [], usage: { input_tokens: bill.input, output_tokens: 3 } });
          if (req.host === 'api.openai.com')
            return sendJson(res, 200, {
              object: 'chat.completion',
              model: 'gpt-test-1',
              choices: [],
              usage: { prompt_tokens: bill.input, completion_tokens: 3 },
            });
          return sendJson(res, 200, {
            candidates: [],
            usageMetadata: { promptTokenCount: bill.input, candidatesTokenCount: 3 },
            modelVersion: 'gemini-test-1',
          });
        },
      ],
    });
    const port = standin.port;
    proxy = await startProxy({
      env: { MODEL_KEY: KEY, AGENT_KEY },
      config: {
        proxy: { hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) },
        grants: {
          anthropic: { type: 'api_key', domains: [`api.anthropic.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-api-key' } },
          openai: { type: 'bearer', domains: [`api.openai.com:${port}`], secret: 'env:MODEL_KEY' },
          gemini: { type: 'api_key', domains: [`generativelanguage.googleapis.com:${port}`], secret: 'env:MODEL_KEY', inject: { header: 'x-goog-api-key' } },
        },
        agents: { bot: { key: 'env:AGENT_KEY' }, free: { key: 'env:AGENT_KEY' } },
        pricing: { 'claude-test*': PRICE, 'gpt-test*': PRICE, 'gemini-test*': PRICE },
        budgets: [{ agent: 'bot', limit: { usd: 1000 }, per: 'day' }],
      },
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    bot = new ProxyAgent({ uri: `http://bot:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca } });
    free = new ProxyAgent({ uri: `http://free:${AGENT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca } });
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    await bot?.close();
    await free?.close();
    await proxy?.stop();
    await standin?.close();
  });

  const path = {
    'api.anthropic.com': '/v1/messages',
    'api.openai.com': '/v1/chat/completions',
    'generativelanguage.googleapis.com': '/v1beta/models/gemini-test-1:generateContent',
  };
  type Host = (typeof HOSTS)[number];

  async function send(agent: ProxyAgent, host: Host, body: string | Buffer | Readable, headers: Record<string, string> = {}, where = path[host]) {
    const res = await agent.request({
      origin: `https://${host}:${standin.port}`,
      path: where,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    const text = await res.body.text();
    outputs.push(text);
    const error = res.headers['x-keyway-error'];
    return { status: res.statusCode, error: typeof error === 'string' ? error : undefined, reason: String(res.headers['x-keyway-reason'] ?? ''), text };
  }

  const messages = 'messages":[{"role":"user","content":"hi"}]';
  const refused: [string, Host, string | Buffer, Record<string, string>?, string?][] = [
    [
      '"Stream": true (a case-blind gateway streams it, without usage)',
      'api.anthropic.com',
      `{"model":"claude-test-1","max_tokens":10,"${messages},"Stream":true}`,
    ],
    ['`stream` twice', 'api.openai.com', `{"model":"gpt-test-1","${messages},"stream":false,"stream":true}`],
    ['`stream` twice, one spelt with an escape', 'api.openai.com', `{"model":"gpt-test-1","${messages},"stream":false,"str\\u0065am":true}`],
    ['a comment', 'api.anthropic.com', `{"model":"claude-test-1",/* x */"max_tokens":10,"${messages}}`],
    ['a BOM', 'api.openai.com', `\uFEFF{"model":"gpt-test-1","${messages}}`],
    ['a trailing comma', 'api.anthropic.com', `{"model":"claude-test-1","max_tokens":10,"${messages},}`],
    [
      'generation_config beside generationConfig',
      'generativelanguage.googleapis.com',
      '{"contents":[{"parts":[{"text":"hi"}]}],"generation_config":{"maxOutputTokens":5},"generationConfig":{"maxOutputTokens":9000}}',
    ],
    [
      'maxOutputTokens twice under generationConfig',
      'generativelanguage.googleapis.com',
      '{"contents":[],"generationConfig":{"maxOutputTokens":5,"max_output_tokens":9000}}',
    ],
    ['a second JSON value', 'api.openai.com', `{"model":"gpt-test-1","${messages}}{"stream":true}`],
    ['a gzipped body', 'api.openai.com', gzipSync(`{"model":"gpt-test-1","${messages}}`), { 'content-encoding': 'gzip' }],
    ['a text/plain body', 'api.anthropic.com', `{"model":"claude-test-1","max_tokens":10,"${messages}}`, { 'content-type': 'text/plain' }],
    ['a previous_response_id chain', 'api.openai.com', '{"model":"gpt-test-1","input":"and then?","previous_response_id":"resp_1"}', {}, '/v1/responses'],
    ['a conversation', 'api.openai.com', '{"model":"gpt-test-1","input":"and then?","conversation":"conv_1"}', {}, '/v1/responses'],
  ];

  it.each(refused)(
    'under a budget, %s is refused (budget_unmeterable) and never reaches the vendor',
    async (_what, host, body, headers = {}, where = undefined) => {
      const seen = standin.seen.length;
      const outcome = await send(bot, host, body, headers, where);
      expect(outcome.status).toBe(429);
      expect(outcome.error).toBe('budget_unmeterable');
      expect(outcome.reason).toMatch(/cannot meter this model request \(.+\), and a model budget applies/);
      expect(standin.seen.length).toBe(seen);
    },
  );

  it('over HTTP/2 too: "Stream": true is refused and never reaches the vendor', async () => {
    const seen = standin.seen.length;
    const session = await h2ThroughProxy(proxy.port, `api.openai.com:${standin.port}`, proxy.caPath, `bot:${AGENT_KEY}`);
    try {
      const answer = await h2Request(
        session,
        { ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' },
        `{"model":"gpt-test-1","${messages},"Stream":true}`,
      );
      outputs.push(answer.body.toString());
      expect(answer.headers[':status']).toBe(429);
      expect(answer.headers['x-keyway-error']).toBe('budget_unmeterable');
      expect(standin.seen.length).toBe(seen);
    } finally {
      session.destroy();
    }
  });

  it('without a budget the same bodies go as they came', async () => {
    const seen = standin.seen.length;
    const outcome = await send(free, 'api.anthropic.com', refused[0]![2]);
    expect(outcome.status).toBe(200);
    expect(standin.seen.length).toBe(seen + 1);
  });

  it('a large body refused at its end: streamed, refused before its last byte went, so the vendor never had it whole', async () => {
    const seen = standin.seen.length;
    const image = 'A'.repeat(64 * 1024);
    async function* chunked(): AsyncGenerator<Buffer> {
      yield Buffer.from(`{"model":"claude-test-1","max_tokens":10,"messages":[{"role":"user","content":[`);
      for (let i = 0; i < 48; i++) yield Buffer.from(`${i === 0 ? '' : ','}{"type":"image","source":{"type":"base64","data":"${image}"}}`);
      yield Buffer.from(']}],"Stream":true}');
    }
    const outcome = await send(bot, 'api.anthropic.com', Readable.from(chunked()));
    expect(outcome.error).toBe('budget_unmeterable');
    expect(standin.seen.length).toBe(seen);
    // The same body, spelt right, streams through whole (3 MiB: never held by keyway).
    async function* right(): AsyncGenerator<Buffer> {
      for await (const chunk of chunked()) yield Buffer.from(chunk.toString().replace('"Stream"', '"stream"').replace('true}', 'false}'));
    }
    const ok = await send(bot, 'api.anthropic.com', Readable.from(right()));
    expect(ok.status).toBe(200);
    expect(standin.seen.length).toBe(seen + 1);
  });

  it('ordinary bodies are admitted and counted exactly', async () => {
    const lines = proxy.auditLines().length;
    const ok = await send(bot, 'api.openai.com', `{"model":"gpt-test-1","${messages},"max_completion_tokens":20}`);
    expect(ok.status).toBe(200);
    // Lines are written as exchanges close: an earlier test's may land after `lines`.
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(lines)
          .find((l) => (l['usage'] as { model?: string } | undefined)?.model === 'gpt-test-1'),
      'the audit line',
    );
    expect(line['usage']).toEqual({ model: 'gpt-test-1', input_tokens: bills.at(-1)!.input, output_tokens: 3 });
  });

  /** The usage keyway wrote for the next request left unanswered, and what the stand-in billed for it. */
  async function leftAt(lines: number): Promise<{ usage: Record<string, unknown>; bill: Bill; cost: unknown }> {
    // Only a request left early is partial (an earlier test's line may land after `lines`).
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(lines)
          .find((l) => (l['usage'] as { partial?: boolean } | undefined)?.partial === true),
      'the left request’s audit line',
      10_000,
    );
    return { usage: line['usage'] as Record<string, unknown>, bill: bills.at(-1)!, cost: line['cost_usd'] };
  }

  /** Sends `body`, leaves once the stand-in has it (it holds the answer's head), and gives what keyway counted. */
  async function leaveBeforeHead(agent: ProxyAgent, host: Host, body: string) {
    const lines = proxy.auditLines().length;
    const bodies = bills.length;
    const controller = new AbortController();
    const answer = agent
      .request({
        origin: `https://${host}:${standin.port}`,
        path: path[host],
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-test-hold': 'head' },
        body,
        signal: controller.signal,
      })
      .catch((err: unknown) => err);
    await waitFor(() => (bills.length > bodies ? true : undefined), 'the stand-in to have the request', 10_000);
    controller.abort();
    expect(await answer).toBeInstanceOf(Error);
    return leftAt(lines);
  }

  function atLeastBilled(usage: Record<string, unknown>, bill: Bill): void {
    expect(usage['input_tokens'] as number).toBeGreaterThanOrEqual(bill.input);
    expect(usage['output_tokens'] as number).toBeGreaterThanOrEqual(bill.output);
  }

  it.each(['bot', 'free'] as const)(
    'left before the head over HTTP/1.1 (agent %s): its input estimate and its max_tokens, priced at the model its body names',
    async (who) => {
      const body = JSON.stringify({ model: 'claude-test-1', max_tokens: 700, messages: [{ role: 'user', content: 'q'.repeat(4000) }] });
      const { usage, bill, cost } = await leaveBeforeHead(who === 'bot' ? bot : free, 'api.anthropic.com', body);
      expect(usage).toEqual({ model: 'claude-test-1', input_tokens: Math.ceil(Buffer.byteLength(body) / 4), output_tokens: 700, partial: true });
      atLeastBilled(usage, bill);
      expect(cost).toBeCloseTo(((usage['input_tokens'] as number) * 3 + 700 * 15) / 1e6, 9);
    },
  );

  it('left before the head over HTTP/2, with no cap: the vendor default output floor', async () => {
    const lines = proxy.auditLines().length;
    const bodies = bills.length;
    const session = await h2ThroughProxy(proxy.port, `api.openai.com:${standin.port}`, proxy.caPath, `bot:${AGENT_KEY}`);
    try {
      const body = JSON.stringify({ model: 'gpt-test-1', messages: [{ role: 'user', content: 'q'.repeat(2000) }] });
      const stream = session.request({
        ':method': 'POST',
        ':path': '/v1/chat/completions',
        'content-type': 'application/json',
        'x-test-hold': 'head',
      });
      stream.on('error', () => undefined);
      stream.end(body);
      await waitFor(() => (bills.length > bodies ? true : undefined), 'the stand-in to have the request', 10_000);
      stream.close();
      const { usage, bill } = await leftAt(lines);
      expect(usage).toEqual({
        model: 'gpt-test-1',
        input_tokens: Math.ceil(Buffer.byteLength(body) / 4),
        output_tokens: DEFAULT_OUTPUT_FLOOR.openai,
        partial: true,
      });
      atLeastBilled(usage, bill);
    } finally {
      session.destroy();
    }
  });

  it('a stream left after its first chunk: its cap, not the one delta delivered', async () => {
    const lines = proxy.auditLines().length;
    const body = JSON.stringify({ model: 'gpt-test-1', stream: true, max_completion_tokens: 321, messages: [{ role: 'user', content: 'q'.repeat(3000) }] });
    const res = await bot.request({
      origin: `https://api.openai.com:${standin.port}`,
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test-hold': 'first' },
      body,
    });
    const reader = res.body[Symbol.asyncIterator]();
    const first = await reader.next();
    expect(String(first.value)).toContain('Hel');
    res.body.destroy();
    const { usage, bill } = await leftAt(lines);
    expect(usage).toEqual({ model: 'gpt-test-1', input_tokens: Math.ceil(Buffer.byteLength(body) / 4), output_tokens: 321, partial: true });
    atLeastBilled(usage, bill);
  });

  it('a Gemini request left before its head: the model from its path, generationConfig.maxOutputTokens as its floor', async () => {
    const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'q'.repeat(1000) }] }], generationConfig: { maxOutputTokens: 55 } });
    const { usage, bill } = await leaveBeforeHead(bot, 'generativelanguage.googleapis.com', body);
    expect(usage).toEqual({ model: 'gemini-test-1', input_tokens: Math.ceil(Buffer.byteLength(body) / 4), output_tokens: 55, partial: true });
    atLeastBilled(usage, bill);
  });

  it('no real key in any output, audit line or log', () => {
    const everything = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')].join('\n');
    expect(findLeak(everything, KEY)).toBeUndefined();
  });
});
