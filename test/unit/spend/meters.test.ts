// The answer meters (src/spend/core/meters) on hand-made bodies, for what the stand-ins do not send:
// line ends other than LF, events past the bound, usage in every chunk, answers with no usage or not
// JSON, answers cut short at every point. The stand-ins' own bytes are read in
// test/integration/spend-meters-standins.test.ts.
import { describe, expect, it } from 'vitest';
import { answerMeter, type MeterPlan, wsMeter } from '../../../src/spend/core/meters/index.ts';
import { rawStringLength } from '../../../src/spend/core/meters/raw-string.ts';
import { MAX_EVENT_BYTES, SseReader } from '../../../src/spend/core/meters/sse.ts';
import type { UsageReading } from '../../../src/spend/core/usage.ts';

const plan = (api: MeterPlan['api'], route: MeterPlan['route'], requestModel: string | null = null): MeterPlan => ({ api, route, requestModel });
const ANTHROPIC = plan('anthropic', 'anthropic-messages');
const CHAT = plan('openai', 'openai-chat');
const RESPONSES = plan('openai', 'openai-responses');
const GEMINI = plan('gemini', 'gemini-generate', 'gemini-x');
const SSE = 'text/event-stream; charset=utf-8';

const sse = (events: Array<[string | undefined, unknown]>, end = '\n'): string =>
  events
    .map(([name, data]) => `${name === undefined ? '' : `event: ${name}${end}`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}${end}${end}`)
    .join('');

function read(p: MeterPlan, body: string | Buffer, contentType = SSE, how: 'end' | 'abandon' = 'end', requestBytes?: number): UsageReading {
  const meter = answerMeter(p, 200, contentType, { requestBytes });
  if (meter === undefined) throw new Error('no meter');
  meter.push(Buffer.isBuffer(body) ? body : Buffer.from(body));
  return how === 'end' ? meter.end() : meter.abandon();
}

const anthropicStart = (usage: Record<string, number>) =>
  ['message_start', { type: 'message_start', message: { model: 'claude-x', usage } }] as [string, unknown];
const textDelta = (text: string) =>
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }] as [string, unknown];

describe('SseReader', () => {
  const collect = (pieces: string[], max?: number) => {
    const events: Array<[string | undefined, string]> = [];
    const skipped: number[] = [];
    const reader = new SseReader({ event: (name, data) => events.push([name, data]), skipped: (bytes) => skipped.push(bytes), large: () => {} }, max);
    for (const piece of pieces) reader.push(Buffer.from(piece));
    reader.end();
    return { events, skipped };
  };

  it('reads LF, CRLF and CR line ends, a CR and its LF in two pieces, multi-line data, comments and ids', () => {
    const text = ': comment\r\nevent: a\r\nid: 1\r\ndata: one\r\ndata: two\r\n\r\nevent: b\rdata:three\r\rdata: four\n\n';
    const expected = [
      ['a', 'one\ntwo'],
      ['b', 'three'],
      [undefined, 'four'],
    ];
    expect(collect([text]).events).toEqual(expected);
    for (let at = 0; at <= text.length; at++) expect(collect([text.slice(0, at), text.slice(at)]).events).toEqual(expected);
    expect(collect([...text]).events).toEqual(expected);
  });

  it('an event with no data is nothing; the last event is read at the end even without its blank line', () => {
    expect(collect(['event: lonely\n\n', 'data: x']).events).toEqual([[undefined, 'x']]);
  });

  it('an event past the bound is skipped whole and its size reported; the next is read', () => {
    const big = `data: ${'x'.repeat(100)}\ndata: ${'y'.repeat(100)}\n\n`;
    const { events, skipped } = collect([big.slice(0, 50), big.slice(50), 'data: after\n\n'], 64);
    expect(events).toEqual([[undefined, 'after']]);
    expect(skipped).toEqual([big.length - 3]); // its lines, without their three line ends
  });
});

describe('rawStringLength (a delta read unparsed)', () => {
  it('measures the first string member as written, escapes included; anything else is undefined', () => {
    expect(rawStringLength('{"type":"text_delta","text":"hello"}', 'text')).toBe(5);
    expect(rawStringLength('{"text":  "a\\"b\\\\"}', 'text')).toBe(6);
    expect(rawStringLength('{"text":"\\\\"}', 'text')).toBe(2);
    expect(rawStringLength('{"text":""}', 'text')).toBe(0);
    expect(rawStringLength('{"text":null}', 'text')).toBeUndefined();
    expect(rawStringLength('{"cited_text":"x"}', 'text')).toBeUndefined();
    expect(rawStringLength('{"text":"unterminated', 'text')).toBeUndefined();
  });

  it('a content_block_delta of a shape the quick path does not know is parsed instead (a signature is no output)', () => {
    const body = sse([
      anthropicStart({ input_tokens: 1, output_tokens: 1 }),
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 's'.repeat(400) } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 't'.repeat(40) } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"a":"\\"x\\""}' } }],
    ]);
    // 40 characters of thinking and the 14-character JSON as written on the wire (22 with its escapes): ceil(62 / 4).
    expect(read(ANTHROPIC, body, SSE, 'abandon')).toEqual({ usage: { model: 'claude-x', input_tokens: 1, output_tokens: 16 }, basis: 'partial' });
  });
});

describe('answerMeter', () => {
  it('answers that are not 2xx get no meter; any 2xx does', () => {
    for (const status of [100, 199, 300, 304, 400, 401, 429, 500, 529]) expect(answerMeter(ANTHROPIC, status, SSE)).toBeUndefined();
    for (const status of [200, 201, 299]) expect(answerMeter(ANTHROPIC, status, SSE)).toBeDefined();
  });

  it('Anthropic: the latest of each count; message_delta may restate the input', () => {
    const body = sse([
      anthropicStart({ input_tokens: 10, cache_read_input_tokens: 5, cache_creation_input_tokens: 0, output_tokens: 1 }),
      ['ping', { type: 'ping' }],
      textDelta('hello'),
      ['message_delta', { type: 'message_delta', usage: { output_tokens: 30, input_tokens: 12 } }],
      ['message_stop', { type: 'message_stop' }],
    ]);
    expect(read(ANTHROPIC, body)).toEqual({
      usage: { model: 'claude-x', input_tokens: 17, output_tokens: 30, cached_input_tokens: 5 },
      basis: 'reported',
    });
  });

  it('Anthropic stream that stops after message_start: the input is known, the output what was delivered (partial)', () => {
    const body = sse([anthropicStart({ input_tokens: 10, output_tokens: 1 }), textDelta('x'.repeat(40)), textDelta('y')]);
    expect(read(ANTHROPIC, body, SSE, 'end')).toEqual({ usage: { model: 'claude-x', input_tokens: 10, output_tokens: 11 }, basis: 'partial' });
    // Many one-character deltas: at least one token each.
    const many = sse([anthropicStart({ input_tokens: 10, output_tokens: 1 }), ...Array.from({ length: 25 }, () => textDelta('a'))]);
    expect(read(ANTHROPIC, many, SSE, 'abandon')).toEqual({ usage: { model: 'claude-x', input_tokens: 10, output_tokens: 25 }, basis: 'partial' });
  });

  it('an abandoned answer whose final usage had arrived counts that usage, as reported', () => {
    const body = sse([
      [undefined, { model: 'gpt-x', choices: [{ delta: { content: 'hi' } }], usage: null }],
      [undefined, { model: 'gpt-x', choices: [], usage: { prompt_tokens: 9, completion_tokens: 2 } }],
    ]);
    expect(read(CHAT, body, SSE, 'abandon')).toEqual({ usage: { model: 'gpt-x', input_tokens: 9, output_tokens: 2 }, basis: 'reported' });
  });

  it('abandoned before any byte: the input estimated from the request size when given, the output 0', () => {
    expect(read(CHAT, '', SSE, 'abandon', 401)).toEqual({ usage: { model: null, input_tokens: 101, output_tokens: 0 }, basis: 'partial' });
    expect(read(GEMINI, '', 'application/json', 'abandon')).toEqual({ usage: { model: 'gemini-x', input_tokens: 0, output_tokens: 0 }, basis: 'partial' });
  });

  it('no usage in the answer: unknown (OpenAI stream without include_usage, a Responses stream that never completed, an empty body)', () => {
    const chat = sse([
      [undefined, { model: 'gpt-x', choices: [{ delta: { content: 'hi' } }] }],
      [undefined, '[DONE]'],
    ]);
    expect(read(CHAT, chat)).toMatchObject({ usage: undefined, basis: 'reported' });
    const responses = sse([['response.created', { type: 'response.created', response: { model: 'gpt-x', usage: null } }]]);
    expect(read(RESPONSES, responses)).toMatchObject({ usage: undefined, basis: 'reported' });
    expect(read(CHAT, '', 'application/json')).toMatchObject({ usage: undefined, basis: 'reported' });
    expect(read(CHAT, '{"choices":[]}', 'application/json')).toMatchObject({ usage: undefined, basis: 'reported' });
  });

  it('no usage in the answer: its estimate is its bytes as tokens (request as input, the delivered answer as output, 4 bytes a token), never below what it delivered', () => {
    const chat = sse([
      [undefined, { model: 'gpt-x', choices: [{ delta: { content: 'hi' } }] }],
      [undefined, '[DONE]'],
    ]);
    expect(read(CHAT, chat, SSE, 'end', 401)).toEqual({
      usage: undefined,
      basis: 'reported',
      estimate: { model: 'gpt-x', input_tokens: 101, output_tokens: Math.ceil(Buffer.byteLength(chat) / 4) },
    });
    // No request size given: no input estimate; a body that is not JSON still counts its bytes.
    expect(read(CHAT, '<html>busy</html>', 'text/html').estimate).toEqual({ model: null, input_tokens: 0, output_tokens: 5 });
  });

  it('not JSON, or JSON with counts that are not counts: unknown', () => {
    expect(read(CHAT, '<html>busy</html>', 'text/html')).toMatchObject({ usage: undefined, basis: 'reported' });
    expect(read(CHAT, '{"usage":{"prompt_tokens":-1,"completion_tokens":"5"}}', 'application/json')).toMatchObject({ usage: undefined, basis: 'reported' });
    expect(read(CHAT, sse([[undefined, 'not json']]))).toMatchObject({ usage: undefined, basis: 'reported' });
  });

  it('Responses: response.incomplete and response.failed carry usage too; audio deltas are not text', () => {
    for (const end of ['response.incomplete', 'response.failed']) {
      const body = sse([
        [end, { type: end, response: { model: 'gpt-x', usage: { input_tokens: 3, output_tokens: 4, input_tokens_details: { cached_tokens: 0 } } } }],
      ]);
      expect(read(RESPONSES, body)).toEqual({ usage: { model: 'gpt-x', input_tokens: 3, output_tokens: 4 }, basis: 'reported' });
    }
    const audio = sse([['response.audio.delta', { type: 'response.audio.delta', delta: 'QUJD'.repeat(100) }]]);
    expect(read(RESPONSES, audio, SSE, 'abandon')).toEqual({ usage: { model: null, input_tokens: 0, output_tokens: 0 }, basis: 'partial' });
  });

  it('Gemini: usage in every chunk (the latest wins), tool-use prompt tokens in the input, thoughts in the output', () => {
    const chunk = (text: string, meta: Record<string, number>) =>
      [undefined, { candidates: [{ content: { parts: [{ text }] } }], usageMetadata: meta, modelVersion: 'gemini-x-001' }] as [undefined, unknown];
    const body = sse([
      chunk('a', { promptTokenCount: 20, candidatesTokenCount: 1 }),
      chunk('b', { promptTokenCount: 20, toolUsePromptTokenCount: 4, candidatesTokenCount: 9, thoughtsTokenCount: 6, cachedContentTokenCount: 8 }),
    ]);
    expect(read(GEMINI, body)).toEqual({ usage: { model: 'gemini-x-001', input_tokens: 24, output_tokens: 15, cached_input_tokens: 8 }, basis: 'reported' });
    // The same as a JSON array, and as one object.
    const array = `[${JSON.stringify(chunk('a', { promptTokenCount: 20 })[1])},\n${JSON.stringify(chunk('b', { promptTokenCount: 20, candidatesTokenCount: 3 })[1])}]`;
    expect(read(GEMINI, array, 'application/json')).toEqual({ usage: { model: 'gemini-x-001', input_tokens: 20, output_tokens: 3 }, basis: 'reported' });
    expect(read(GEMINI, JSON.stringify(chunk('b', { promptTokenCount: 2, candidatesTokenCount: 3 })[1]), 'application/json')).toEqual({
      usage: { model: 'gemini-x-001', input_tokens: 2, output_tokens: 3 },
      basis: 'reported',
    });
  });

  it('a streamed delta past 8 MiB is read as it passes: usage after it still counts; a stream without its final usage, ended or abandoned, counts its bytes as output', () => {
    const huge = textDelta('z'.repeat(MAX_EVENT_BYTES + 10));
    const start = anthropicStart({ input_tokens: 10, output_tokens: 1 });
    const withUsage = sse([start, huge, ['message_delta', { type: 'message_delta', usage: { output_tokens: 3000000 } }]]);
    expect(read(ANTHROPIC, withUsage)).toEqual({ usage: { model: 'claude-x', input_tokens: 10, output_tokens: 3000000 }, basis: 'reported' });
    const without = sse([start, huge]);
    for (const how of ['end', 'abandon'] as const) {
      const reading = read(ANTHROPIC, without, SSE, how);
      expect(reading.basis).toBe('partial');
      expect(reading.usage!.output_tokens).toBeGreaterThanOrEqual(Math.ceil(MAX_EVENT_BYTES / 4));
    }
    // Not an object: it cannot be read, and a stream that ends with it is unknown.
    expect(read(ANTHROPIC, sse([start, ['content_block_delta', `"${'z'.repeat(MAX_EVENT_BYTES)}"`]]))).toMatchObject({ usage: undefined, basis: 'reported' });
  });

  it('a JSON answer past 8 MiB is read for its usage and model wherever they sit (json-members.ts); a Gemini array element past it is read as it passes, the other elements too', () => {
    const big = JSON.stringify({ model: 'gpt-x', pad: 'p'.repeat(MAX_EVENT_BYTES), usage: { prompt_tokens: 1, completion_tokens: 1 } });
    expect(read(CHAT, big, 'application/json')).toEqual({ usage: { model: 'gpt-x', input_tokens: 1, output_tokens: 1 }, basis: 'reported' });
    const usageFirst = JSON.stringify({ model: 'gpt-x', usage: { prompt_tokens: 1, completion_tokens: 1 }, pad: 'p'.repeat(MAX_EVENT_BYTES) });
    expect(read(CHAT, usageFirst, 'application/json')).toEqual({ usage: { model: 'gpt-x', input_tokens: 1, output_tokens: 1 }, basis: 'reported' });
    const element = (text: string, meta?: Record<string, number>) =>
      JSON.stringify({ candidates: [{ content: { parts: [{ text }] } }], ...(meta ? { usageMetadata: meta } : {}) });
    const array = `[${element('q'.repeat(MAX_EVENT_BYTES))},${element('a', { promptTokenCount: 5, candidatesTokenCount: 2 })}]`;
    expect(read(GEMINI, array, 'application/json')).toEqual({ usage: { model: 'gemini-x', input_tokens: 5, output_tokens: 2 }, basis: 'reported' });
  });

  it('a whole JSON answer cut short: its delivered bytes count as output (estimate), embeddings excepted', () => {
    const body = JSON.stringify({ model: 'gpt-x', choices: [{ message: { content: 'x'.repeat(400) } }], usage: { prompt_tokens: 1, completion_tokens: 100 } });
    const partial = read(CHAT, body.slice(0, 200), 'application/json', 'abandon', 40);
    expect(partial).toEqual({ usage: { model: null, input_tokens: 10, output_tokens: 50 }, basis: 'partial' });
    // Cut after its last byte: it parses, and its usage counts.
    expect(read(CHAT, body, 'application/json', 'abandon')).toEqual({ usage: { model: 'gpt-x', input_tokens: 1, output_tokens: 100 }, basis: 'reported' });
    const embeddings = plan('openai', 'openai-embeddings');
    expect(read(embeddings, '{"data":[{"embedding":[0.1,0.2', 'application/json', 'abandon', 40)).toEqual({
      usage: { model: null, input_tokens: 10, output_tokens: 0 },
      basis: 'partial',
    });
  });

  it('ends once: a second end() or abandon() gives the first reading, pieces after it are ignored', () => {
    const meter = answerMeter(CHAT, 200, 'application/json')!;
    meter.push(Buffer.from('{"usage":{"prompt_tokens":1,"completion_tokens":2}}'));
    const first = meter.end();
    meter.push(Buffer.from('garbage'));
    expect(meter.abandon()).toBe(first);
    expect(meter.end()).toBe(first);
  });
});

describe('wsMeter', () => {
  const created = (model: string) => JSON.stringify({ type: 'response.created', response: { model, usage: null } });
  const delta = (text: string) => JSON.stringify({ type: 'response.output_text.delta', delta: text });
  const completed = (model: string, input: number, output: number) =>
    JSON.stringify({ type: 'response.completed', response: { model, usage: { input_tokens: input, output_tokens: output } } });

  it('an error before any output ends the response unbilled; after some output, it is counted as partial', () => {
    const meter = wsMeter(RESPONSES);
    meter.onClientMessage('x'.repeat(80));
    expect(meter.onServerMessage(created('m'))).toEqual([]);
    expect(meter.onServerMessage(JSON.stringify({ type: 'error', status: 400 }))).toEqual([]);
    meter.onServerMessage(created('m'));
    meter.onServerMessage(delta('abcdefgh'));
    expect(meter.onServerMessage(JSON.stringify({ type: 'error', status: 500 }))).toEqual([
      { usage: { model: 'm', input_tokens: 20, output_tokens: 2 }, basis: 'partial' },
    ]);
    expect(meter.close()).toEqual([]);
  });

  it("a response that completes without its usage is unknown, with its messages' size as its estimate (4 bytes a token)", () => {
    const meter = wsMeter(RESPONSES);
    meter.onClientMessage('x'.repeat(400));
    const messages = [created('m'), delta('y'.repeat(1000)), JSON.stringify({ type: 'response.completed', response: { model: 'm', usage: null } })];
    const readings = messages.flatMap((m) => meter.onServerMessage(m));
    const bytes = messages.reduce((n, m) => n + m.length, 0);
    expect(readings).toEqual([{ usage: undefined, basis: 'reported', estimate: { model: 'm', input_tokens: 100, output_tokens: Math.ceil(bytes / 4) } }]);
  });

  it('a new response while one is open ends the open one as partial; messages that are not JSON or not events are passed over', () => {
    const meter = wsMeter(RESPONSES);
    meter.onServerMessage(created('a'));
    meter.onServerMessage(delta('hi'));
    expect(meter.onServerMessage('not json')).toEqual([]);
    expect(meter.onServerMessage('[1,2]')).toEqual([]);
    // The server stopped it where it was: what it wrote (no floor: the client did not leave).
    expect(meter.onServerMessage(created('b'))).toEqual([{ usage: { model: 'a', input_tokens: 0, output_tokens: 1 }, basis: 'partial' }]);
    expect(meter.onServerMessage(completed('b', 5, 6))).toEqual([{ usage: { model: 'b', input_tokens: 5, output_tokens: 6 }, basis: 'reported' }]);
  });

  it('a socket closed with responses asked for and never begun counts each at its floor; one the server refused (an error first) counts nothing', () => {
    const meter = wsMeter(RESPONSES);
    meter.onClientBytes(400);
    meter.onServerMessage(JSON.stringify({ type: 'error', error: { code: 'invalid_request' } }));
    meter.onClientBytes(800);
    meter.onClientBytes(1200);
    meter.onServerMessage(created('a'));
    expect(meter.onServerMessage(completed('a', 5, 6))).toEqual([{ usage: { model: 'a', input_tokens: 5, output_tokens: 6 }, basis: 'reported' }]);
    // The 800-byte ask was answered by `a`; the 1200-byte one never began.
    expect(meter.close()).toEqual([{ usage: { model: null, input_tokens: 300, output_tokens: 16_384 }, basis: 'partial' }]);
  });

  it('a message past 8 MiB is not parsed: its bytes count as delivered output, the response unknown unless it completes', () => {
    const meter = wsMeter(RESPONSES);
    meter.onServerMessage(created('a'));
    expect(meter.onServerMessage(delta('q'.repeat(MAX_EVENT_BYTES + 1)))).toEqual([]);
    const [partial] = meter.close();
    expect(partial?.basis).toBe('partial');
    expect(partial?.usage?.output_tokens).toBeGreaterThan(MAX_EVENT_BYTES / 4);
  });
});
