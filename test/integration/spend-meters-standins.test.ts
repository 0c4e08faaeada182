// The answer meters (src/spend/core/meters) on the bytes the model stand-ins really send: each answer,
// whole and streamed, captured off a TLS socket, then fed to a meter whole, split at every byte
// position (mid-line, mid-character, mid-JSON) and in 1-byte pieces; every way must read the usage
// the stand-in was told to report. Cut halfway and abandoned, a stream counts what was delivered.
// Codex's WebSocket is metered from the messages a real `ws` client received.
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { answerMeter, type MeterPlan, modelRoute, socketRoute, wsMeter } from '../../src/spend/core/meters/index.ts';
import type { UsageReading } from '../../src/spend/core/usage.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { anthropicHandler } from '../helpers/model-standins/anthropic.ts';
import { codeAssistHandler } from '../helpers/model-standins/code-assist.ts';
import { geminiHandler } from '../helpers/model-standins/gemini.ts';
import { openaiHandler, openaiWebSocketHandler } from '../helpers/model-standins/openai.ts';
import { type StandinServer, startStandinServer } from '../helpers/model-standins/server.ts';

const KEY = `${CANARY}-meter-key`;
const HOST = 'localhost';
// Non-ASCII text, so that splits fall inside multi-byte characters.
const TEXT = 'Grüße aus dem Stand-in — 你好, the meter counts this 🙂 reply.';
const USAGE = { input: 123, output: 45, cacheRead: 7, cacheWrite: 3, reasoning: 5 };

interface Capture {
  status: number;
  contentType: string | undefined;
  bytes: Buffer;
  requestBytes: number;
}

/** The plan keyway would make for this vendor's host and path. */
function planFor(api: 'anthropic' | 'openai' | 'gemini', host: string, path: string): MeterPlan {
  const route = modelRoute(undefined, host, 'POST', path);
  if (route?.kind !== 'metered') throw new Error(`not metered: ${api} ${host}${path}`);
  expect(route.plan.api).toBe(api);
  return route.plan;
}

function meterWhole(plan: MeterPlan, cap: Capture, pieces: Buffer[]): UsageReading {
  const meter = answerMeter(plan, cap.status, cap.contentType, { requestBytes: cap.requestBytes });
  if (meter === undefined) throw new Error('no meter for a 2xx answer');
  for (const piece of pieces) meter.push(piece);
  return meter.end();
}

/** Every way of cutting the body gives the same reading. */
function expectEveryCut(plan: MeterPlan, cap: Capture, expected: UsageReading): void {
  expect(meterWhole(plan, cap, [cap.bytes])).toEqual(expected);
  for (let at = 0; at <= cap.bytes.length; at++) {
    const reading = meterWhole(plan, cap, [cap.bytes.subarray(0, at), cap.bytes.subarray(at)]);
    if (JSON.stringify(reading) !== JSON.stringify(expected)) expect({ at, reading }).toEqual({ at, reading: expected });
  }
  const bytes = [...cap.bytes].map((byte) => Buffer.from([byte]));
  expect(meterWhole(plan, cap, bytes)).toEqual(expected);
  expect(cap.bytes.includes(CANARY)).toBe(false);
}

/** The body cut at the end of the first event or element holding `marker` (`end` closes it), and abandoned there. */
function abandonAfter(plan: MeterPlan, cap: Capture, marker: string, end = '\n\n'): UsageReading {
  const at = cap.bytes.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  const cut = cap.bytes.indexOf(end, at) + end.length;
  expect(cut).toBeLessThan(cap.bytes.length);
  const meter = answerMeter(plan, cap.status, cap.contentType, { requestBytes: cap.requestBytes });
  meter?.push(cap.bytes.subarray(0, cut));
  return meter!.abandon();
}

describe('answer meters on the stand-ins bytes', () => {
  let anthropic: StandinServer;
  let openai: StandinServer;
  let gemini: StandinServer;
  let codeAssist: StandinServer;
  const dispatcher = new Agent({ connect: { ca: TLS_FIXTURES.ca } });
  const reply = { text: TEXT, usage: USAGE };

  beforeAll(async () => {
    [anthropic, openai, gemini, codeAssist] = await Promise.all([
      startStandinServer({ handlers: [anthropicHandler({ host: HOST, keys: [KEY], reply })] }),
      startStandinServer({
        handlers: [openaiHandler({ host: HOST, keys: [KEY], reply })],
        websocketHandlers: [openaiWebSocketHandler({ host: HOST, keys: [KEY], reply })],
      }),
      startStandinServer({ handlers: [geminiHandler({ host: HOST, keys: [KEY], reply })] }),
      startStandinServer({ handlers: [codeAssistHandler({ host: HOST, accessToken: (token) => token === KEY, reply })] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([anthropic?.close(), openai?.close(), gemini?.close(), codeAssist?.close()]);
    await dispatcher.close();
  });

  async function capture(server: StandinServer, path: string, body: unknown, headers: Record<string, string>): Promise<Capture> {
    const text = JSON.stringify(body);
    const answer = await request(`https://${HOST}:${server.port}${path}`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', ...headers },
      body: text,
    });
    const bytes = Buffer.from(await answer.body.arrayBuffer());
    const type = answer.headers['content-type'];
    return { status: answer.statusCode, contentType: Array.isArray(type) ? type[0] : type, bytes, requestBytes: Buffer.byteLength(text) };
  }

  const anthropicHeaders = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
  const bearer = { authorization: `Bearer ${KEY}` };
  const messages = [{ role: 'user', content: 'hi' }];

  it('Anthropic Messages, whole and streamed: cache reads and writes are part of the input', async () => {
    const plan = planFor('anthropic', 'api.anthropic.com', '/v1/messages?beta=true');
    const expected: UsageReading = {
      usage: { model: 'claude-test', input_tokens: 133, output_tokens: 45, cached_input_tokens: 7, cache_write_tokens: 3 },
      basis: 'reported',
    };
    const whole = await capture(anthropic, '/v1/messages', { model: 'claude-test', max_tokens: 50, messages }, anthropicHeaders);
    expect(whole.contentType).toMatch(/json/);
    expectEveryCut(plan, whole, expected);
    const streamed = await capture(anthropic, '/v1/messages', { model: 'claude-test', max_tokens: 50, messages, stream: true }, anthropicHeaders);
    expect(streamed.contentType).toMatch(/event-stream/);
    expectEveryCut(plan, streamed, expected);

    // Abandoned after the first delta: the input from message_start kept, the output at least what was delivered.
    const partial = abandonAfter(plan, streamed, 'content_block_delta');
    expect(partial.basis).toBe('partial');
    expect(partial.usage).toMatchObject({ model: 'claude-test', input_tokens: 133, cached_input_tokens: 7, cache_write_tokens: 3 });
    expect(partial.usage!.output_tokens).toBeGreaterThan(0);
    expect(partial.usage!.output_tokens).toBeLessThan(45);
  });

  it('OpenAI Chat Completions: whole, streamed with include_usage, and streamed without it (unknown)', async () => {
    const plan = planFor('openai', 'api.openai.com', '/v1/chat/completions');
    const expected: UsageReading = { usage: { model: 'gpt-test', input_tokens: 123, output_tokens: 45, cached_input_tokens: 7 }, basis: 'reported' };
    const whole = await capture(openai, '/v1/chat/completions', { model: 'gpt-test', messages }, bearer);
    expectEveryCut(plan, whole, expected);
    const body = { model: 'gpt-test', messages, stream: true, stream_options: { include_usage: true } };
    const streamed = await capture(openai, '/v1/chat/completions', body, bearer);
    expectEveryCut(plan, streamed, expected);
    const without = await capture(openai, '/v1/chat/completions', { model: 'gpt-test', messages, stream: true }, bearer);
    // Unknown, with its estimate (used under a budget): its bytes as tokens, 4 a token, however it is cut.
    const estimate = { model: 'gpt-test', input_tokens: Math.ceil(without.requestBytes / 4), output_tokens: Math.ceil(without.bytes.length / 4) };
    expectEveryCut(plan, without, { usage: undefined, basis: 'reported', estimate });

    // OpenAI gives no input before the end: abandoned, the input is estimated from the request's size.
    const partial = abandonAfter(plan, streamed, '"content":"Gr');
    expect(partial).toMatchObject({ basis: 'partial', usage: { model: 'gpt-test', input_tokens: Math.ceil(streamed.requestBytes / 4) } });
    expect(partial.usage!.output_tokens).toBeGreaterThan(0);
  });

  it('OpenAI Responses, whole and streamed; legacy Completions; Embeddings (no output)', async () => {
    const responses = planFor('openai', 'api.openai.com', '/v1/responses');
    const expected: UsageReading = { usage: { model: 'gpt-test', input_tokens: 123, output_tokens: 45, cached_input_tokens: 7 }, basis: 'reported' };
    expectEveryCut(responses, await capture(openai, '/v1/responses', { model: 'gpt-test', input: 'hi' }, bearer), expected);
    const streamed = await capture(openai, '/v1/responses', { model: 'gpt-test', input: 'hi', stream: true }, bearer);
    expectEveryCut(responses, streamed, expected);
    const partial = abandonAfter(responses, streamed, 'response.output_text.delta');
    expect(partial.basis).toBe('partial');
    expect(partial.usage!.output_tokens).toBeGreaterThan(0);

    const completions = planFor('openai', 'api.openai.com', '/v1/completions');
    const plain: UsageReading = { usage: { model: 'gpt-test', input_tokens: 123, output_tokens: 45 }, basis: 'reported' };
    expectEveryCut(completions, await capture(openai, '/v1/completions', { model: 'gpt-test', prompt: 'hi' }, bearer), plain);
    const body = { model: 'gpt-test', prompt: 'hi', stream: true, stream_options: { include_usage: true } };
    expectEveryCut(completions, await capture(openai, '/v1/completions', body, bearer), plain);

    const embeddings = planFor('openai', 'api.openai.com', '/v1/embeddings');
    const embedded = await capture(openai, '/v1/embeddings', { model: 'text-embedding-test', input: ['a', 'b'] }, bearer);
    expectEveryCut(embeddings, embedded, { usage: { model: 'text-embedding-test', input_tokens: 123, output_tokens: 0 }, basis: 'reported' });
  });

  it('Gemini generateContent, streamGenerateContent as SSE and as a JSON array: thoughts count as output', async () => {
    const headers = { 'x-goog-api-key': KEY };
    const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    const expected: UsageReading = { usage: { model: 'gemini-test', input_tokens: 123, output_tokens: 45, cached_input_tokens: 7 }, basis: 'reported' };
    const host = 'generativelanguage.googleapis.com';
    const whole = await capture(gemini, '/v1beta/models/gemini-test:generateContent', body, headers);
    expectEveryCut(planFor('gemini', host, '/v1beta/models/gemini-test:generateContent'), whole, expected);
    const streamPath = '/v1beta/models/gemini-test:streamGenerateContent';
    const plan = planFor('gemini', host, `${streamPath}?alt=sse`);
    expect(plan.requestModel).toBe('gemini-test');
    const sse = await capture(gemini, `${streamPath}?alt=sse`, body, headers);
    expect(sse.contentType).toMatch(/event-stream/);
    expectEveryCut(plan, sse, expected);
    const array = await capture(gemini, streamPath, body, headers);
    expect(array.bytes.toString().startsWith('[')).toBe(true);
    expectEveryCut(plan, array, expected);

    // Cut after the first chunk: no usage yet, the output counted from the text delivered.
    for (const [cap, end] of [
      [sse, '\n\n'],
      [array, '}'],
    ] as const) {
      const partial = abandonAfter(plan, cap, '"responseId"', end);
      expect(partial).toMatchObject({ basis: 'partial', usage: { model: 'gemini-test', input_tokens: Math.ceil(cap.requestBytes / 4) } });
      expect(partial.usage!.output_tokens).toBeGreaterThan(0);
    }
  });

  it("Gemini CLI's Code Assist: the response wrapped in {response}, streamed and whole", async () => {
    const host = 'cloudcode-pa.googleapis.com';
    const body = { model: 'gemini-ca', project: 'p', request: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } };
    const expected: UsageReading = { usage: { model: 'gemini-ca', input_tokens: 123, output_tokens: 45, cached_input_tokens: 7 }, basis: 'reported' };
    const plan = planFor('gemini', host, '/v1internal:streamGenerateContent?alt=sse');
    expect(plan.route).toBe('gemini-code-assist');
    expectEveryCut(plan, await capture(codeAssist, '/v1internal:streamGenerateContent?alt=sse', body, bearer), expected);
    expectEveryCut(planFor('gemini', host, '/v1internal:generateContent'), await capture(codeAssist, '/v1internal:generateContent', body, bearer), expected);
  });

  it('a refused request (401) and a bad one (400) get no meter: not billed', async () => {
    const refused = await capture(anthropic, '/v1/messages', { model: 'claude-test', max_tokens: 5, messages }, { 'x-api-key': 'sk-wrong' });
    expect(refused.status).toBe(401);
    expect(answerMeter(planFor('anthropic', 'api.anthropic.com', '/v1/messages'), refused.status, refused.contentType)).toBeUndefined();
    const missing = await capture(gemini, '/v1beta/models/x:generateContent', {}, { 'x-goog-api-key': KEY });
    expect(missing.status).toBe(400);
    const plan = planFor('gemini', 'generativelanguage.googleapis.com', '/v1beta/models/x:generateContent');
    expect(answerMeter(plan, missing.status, missing.contentType)).toBeUndefined();
  });

  it("Codex's Responses WebSocket: a reading per completed response, a partial one for a response the socket dropped", async () => {
    const route = modelRoute(undefined, 'chatgpt.com', 'GET', '/backend-api/codex/responses');
    expect(route).toEqual({ kind: 'free' });
    const socket = new WebSocket(`wss://${HOST}:${openai.port}/v1/responses`, { ca: TLS_FIXTURES.ca, headers: bearer });
    await once(socket, 'open');
    const received: string[] = [];
    let completed = 0;
    const twoDone = new Promise<void>((resolve) =>
      socket.on('message', (data) => {
        const text = data.toString();
        received.push(text);
        if (text.includes('"response.completed"') && ++completed === 2) resolve();
      }),
    );
    const asks = [1, 2].map((n) => JSON.stringify({ type: 'response.create', model: `gpt-ws-${n}`, input: [] }));
    for (const ask of asks) socket.send(ask);
    await twoDone;
    socket.close();

    const plan = socketRoute(undefined, 'api.openai.com', '/v1/responses');
    expect(plan?.kind).toBe('metered');
    if (plan?.kind !== 'metered') return;
    const meter = wsMeter(plan.plan);
    meter.onClientMessage(asks[0]!);
    const readings = received.flatMap((text) => meter.onServerMessage(text));
    expect(readings).toEqual(
      [1, 2].map((n) => ({ usage: { model: `gpt-ws-${n}`, input_tokens: 123, output_tokens: 45, cached_input_tokens: 7 }, basis: 'reported' })),
    );
    expect(meter.close()).toEqual([]);

    // The same messages up to the first delta, then the socket closed: counted as partial.
    const cut = received.findIndex((text) => text.includes('response.output_text.delta'));
    const dropped = wsMeter(plan.plan);
    dropped.onClientMessage(asks[0]!);
    for (const text of received.slice(0, cut + 1)) expect(dropped.onServerMessage(text)).toEqual([]);
    const [partial, ...rest] = dropped.close();
    expect(rest).toEqual([]);
    expect(partial).toMatchObject({ basis: 'partial', usage: { model: 'gpt-ws-1', input_tokens: Math.ceil(Buffer.byteLength(asks[0]!) / 4) } });
    // Its cap unread (the message is not read): at least the vendor's default output (docs/spend.md).
    expect(partial!.usage!.output_tokens).toBe(16_384);
  });
});
