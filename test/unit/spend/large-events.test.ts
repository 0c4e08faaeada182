// Issue 85, "no usage lost to size": an SSE event or a JSON array element too large to hold (past
// the meters' 8 MiB bound) is read as it passes for the members that carry its usage, nested where
// the vendor nests them (json-members.ts with paths, sse-large.ts), never held. Held to JSON.parse's
// reading on generated texts cut anywhere; then 20 MiB of base64 before and after the usage, in
// each vendor's shape; then what is refused (and so stays unknown, never a usage guessed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerMeter, type MeterPlan, wsMeter } from '../../../src/spend/core/meters/index.ts';
import { JsonMembers, MAX_MEMBER_BYTES, membersOfText, type WantedMembers } from '../../../src/spend/core/meters/json-members.ts';
import { MAX_EVENT_BYTES, SseReader } from '../../../src/spend/core/meters/sse.ts';
import type { UsageReading } from '../../../src/spend/core/usage.ts';
import { answerText, scanMembers, SPACE } from '../../helpers/json-texts.ts';

const RESPONSES: MeterPlan = { api: 'openai', route: 'openai-responses', requestModel: null };
const CHAT: MeterPlan = { api: 'openai', route: 'openai-chat', requestModel: null };
const ANTHROPIC: MeterPlan = { api: 'anthropic', route: 'anthropic-messages', requestModel: null };
const GEMINI: MeterPlan = { api: 'gemini', route: 'gemini-generate', requestModel: 'gemini-x' };
const CODE_ASSIST: MeterPlan = { api: 'gemini', route: 'gemini-code-assist', requestModel: 'gemini-x' };
const SSE = 'text/event-stream';
const JSON_TYPE = 'application/json';

/** 20 MiB of base64, as an image result is sent. */
const IMAGE = Buffer.alloc(15 * 1024 * 1024, 'image bytes: \u00ff\u0000').toString('base64');
const NESTED: WantedMembers = ['type', ['response', 'model'], ['response', 'usage']];

const plain = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/** The wanted members of `text` cut at `cuts`, as plain objects. */
const scan = (wanted: WantedMembers, text: string | Buffer, cuts: number[] = []): unknown => plain(scanMembers(wanted, text, cuts));

/** What JSON.parse makes of NESTED: a `response` that is no object is read as null. */
function parsedNested(text: string): unknown {
  const value = JSON.parse(text) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if ('type' in value) out['type'] = value['type'];
  if ('response' in value) {
    const response = value['response'];
    if (typeof response !== 'object' || response === null || Array.isArray(response)) out['response'] = null;
    else {
      const inner: Record<string, unknown> = {};
      for (const key of ['model', 'usage']) if (key in response) inner[key] = (response as Record<string, unknown>)[key];
      out['response'] = inner;
    }
  }
  return plain(out);
}

/** A meter fed `body` in pieces of `piece` bytes, then ended (or abandoned). */
function meter(plan: MeterPlan, type: string, body: Buffer, piece = 64 * 1024, how: 'end' | 'abandon' = 'end'): UsageReading {
  const m = answerMeter(plan, 200, type)!;
  for (let at = 0; at < body.length; at += piece) m.push(body.subarray(at, at + piece));
  return how === 'end' ? m.end() : m.abandon();
}

const event = (name: string | undefined, data: unknown) =>
  `${name === undefined ? '' : `event: ${name}\n`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

describe('JsonMembers on paths', () => {
  it('reads `type`, `response.model` and `response.usage` as JSON.parse does, cut anywhere in two (a repeated `response` replaces the first)', () => {
    const response = fc.oneof(answerText, fc.constantFrom('null', '"response"', '[{"usage":1}]', '12'));
    fc.assert(
      fc.property(response, fc.option(response), fc.constantFrom(...SPACE), fc.nat(), fc.nat(), (first, second, space, a, b) => {
        const text = `{"type":"response.completed",${space}"response"${space}:${space}${first}${second === null ? '' : `,"x":[{"response":{}}],"response":${second}`}${space}}`;
        const length = Buffer.byteLength(text);
        const cut = a % (length + 1);
        expect(scan(NESTED, text, [cut, cut + (b % (length - cut + 1))])).toEqual(parsedNested(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('a member named on a path is read only there: not at the top, not deeper, not inside strings', () => {
    const text = '{"usage":{"a":1},"response":{"output":[{"usage":{"b":2}}],"x":{"usage":{"c":3}},"note":"\\"usage\\":{}","usage":{"d":4}}}';
    expect(scan(NESTED, text)).toEqual({ response: { usage: { d: 4 } } });
  });

  it('20 MiB of base64 before and after the usage, in 64 KiB pieces and in odd ones: the usage read, nothing of the image held', () => {
    const text = JSON.stringify({
      type: 'response.completed',
      response: {
        output: [{ type: 'image_generation_call', result: IMAGE }],
        model: 'gpt-image',
        usage: { input_tokens: 12, output_tokens: 19_220 },
        metadata: { m: IMAGE },
      },
    });
    const bytes = Buffer.from(text);
    expect(bytes.length).toBeGreaterThan(40 * 1024 * 1024);
    for (const piece of [64 * 1024, 1_000_003]) {
      const members = new JsonMembers(NESTED);
      let most = 0;
      for (let at = 0; at < bytes.length; at += piece) {
        members.push(bytes.subarray(at, at + piece));
        most = Math.max(most, members.held);
      }
      expect(plain(members.members())).toEqual({
        type: 'response.completed',
        response: { model: 'gpt-image', usage: { input_tokens: 12, output_tokens: 19_220 } },
      });
      expect(most).toBeLessThan(256);
    }
  });

  it('refuses an object on a path closed by `]`, a wanted member past the bound, a body cut short', () => {
    expect(scan(NESTED, '{"response":{"usage":{}]}')).toBeUndefined();
    expect(scan(NESTED, `{"response":{"usage":{"pad":"${'p'.repeat(MAX_MEMBER_BYTES)}"}}}`)).toBeUndefined();
    expect(scan(NESTED, `{"response":{"model":"m","output":"${IMAGE.slice(0, 1000)}`)).toBeUndefined();
    expect(scan(NESTED, '{"response":{"usage":{"a":1}}')).toBeUndefined();
  });

  it('a text already held (a WebSocket message) is read in pieces, a surrogate pair never split', () => {
    const text = JSON.stringify({ type: 'response.completed', response: { pad: '😀'.repeat(100_000), model: 'm😀', usage: { input_tokens: 1 } } });
    expect(plain(membersOfText(NESTED, text))).toEqual({ type: 'response.completed', response: { model: 'm😀', usage: { input_tokens: 1 } } });
  });
});

describe('SseReader past its bound', () => {
  const collect = (text: string, cuts: number[], max = 64) => {
    const seen: unknown[] = [];
    const reader = new SseReader(
      {
        event: (name, data) => seen.push(['event', name, data]),
        skipped: (size) => seen.push(['skipped', size]),
        large: (name, members, size) => seen.push(['large', name, plain(members), size]),
      },
      max,
      NESTED,
    );
    let at = 0;
    for (const cut of [...cuts, text.length]) {
      reader.push(Buffer.from(text.slice(at, cut)));
      at = cut;
    }
    reader.end();
    return seen;
  };

  it('reads a large event cut anywhere: data on several lines (joined by LF), its name before or after the data, CRLF, other fields passed over', () => {
    const pad = 'é'.repeat(40);
    const first = `event: first\ndata: {"type":"response.completed",\ndata:"response":{"output":"${pad}","usage":{"input_tokens":1}}}\n\n`;
    const second = `id: 7\r\ndata: {"type":"t","response":{"model":"${pad}m"}}\r\n: a comment\r\nevent:named-later\r\n\r\n`;
    const text = `${first}${second}data: small\n\n`;
    const expected = [
      ['large', 'first', { type: 'response.completed', response: { usage: { input_tokens: 1 } } }, expect.any(Number)],
      ['large', 'named-later', { type: 't', response: { model: `${pad}m` } }, expect.any(Number)],
      ['event', undefined, 'small'],
    ];
    expect(collect(text, [])).toEqual(expected);
    for (let a = 0; a <= text.length; a++) expect(collect(text, [a]), `cut at ${a}`).toEqual(expected);
    for (let a = 0; a <= text.length; a += 9) for (let b = a; b <= text.length; b += 13) expect(collect(text, [a, b])).toEqual(expected);
  });

  it('a large event that is not one object, or with a name past 256 characters, is skipped; one with no data line is nothing', () => {
    const array = `data: [${'1,'.repeat(50)}1]\n\n`;
    expect(collect(array, [])).toEqual([['skipped', expect.any(Number)]]);
    const named = `event: ${'n'.repeat(300)}\ndata: {"type":"t"}\n\n`;
    expect(collect(named, [])).toEqual([['skipped', expect.any(Number)]]);
    expect(collect(`: ${'c'.repeat(100)}\n\n`, [])).toEqual([]);
  });
});

describe('answer meters on events and elements past 8 MiB', () => {
  const completed = (usage: unknown, extra: Record<string, unknown> = {}) => ({
    type: 'response.completed',
    sequence_number: 9,
    response: {
      id: 'resp_1',
      model: 'gpt-image-x',
      output: [1, 2, 3].map((n) => ({ type: 'image_generation_call', id: `ig_${n}`, result: IMAGE.slice(0, 8 * 1024 * 1024) })),
      usage,
      metadata: { note: IMAGE },
      ...extra,
    },
  });
  const responsesStream = (usage: unknown, extra?: Record<string, unknown>) =>
    Buffer.from(
      event('response.created', { type: 'response.created', response: { model: 'gpt-image-x', usage: null } }) +
        event('response.output_text.delta', { type: 'response.output_text.delta', delta: 'Here are three images.' }) +
        event('response.completed', completed(usage, extra)),
    );

  it('Responses: a response.completed of 44 MiB (three images) gives the usage billed', () => {
    const body = responsesStream({ input_tokens: 120, input_tokens_details: { cached_tokens: 20 }, output_tokens: 19_220 });
    expect(body.length).toBeGreaterThan(40 * 1024 * 1024);
    const want = { usage: { model: 'gpt-image-x', input_tokens: 120, output_tokens: 19_220, cached_input_tokens: 20 }, basis: 'reported' };
    expect(meter(RESPONSES, SSE, body)).toEqual(want);
    expect(meter(RESPONSES, SSE, body, 999_983)).toEqual(want);
    // The same response whole (not streamed), and over Codex's WebSocket.
    const ws = wsMeter(RESPONSES);
    ws.onServerMessage(JSON.stringify({ type: 'response.created', response: { model: 'gpt-image-x', usage: null } }));
    expect(ws.onServerMessage(JSON.stringify(completed({ input_tokens: 120, input_tokens_details: { cached_tokens: 20 }, output_tokens: 19_220 })))).toEqual([
      want,
    ]);
  });

  it('Responses: a response.completed past 8 MiB whose usage cannot be read is unknown, never a zero', () => {
    const tooLarge = responsesStream({ input_tokens: 120, output_tokens: 19_220, pad: 'p'.repeat(MAX_MEMBER_BYTES) });
    expect(meter(RESPONSES, SSE, tooLarge)).toMatchObject({ usage: undefined, basis: 'reported' });
    const noUsage = responsesStream(null);
    expect(meter(RESPONSES, SSE, noUsage)).toMatchObject({ usage: undefined, basis: 'reported' });
    // Cut short (the client left mid-event): what was delivered, as partial, at least a token per 4 bytes.
    const cut = responsesStream({ input_tokens: 120, output_tokens: 19_220 });
    const partial = meter(RESPONSES, SSE, cut.subarray(0, cut.length - 100), 64 * 1024, 'abandon');
    expect(partial.basis).toBe('partial');
  });

  const geminiChunk = (meta: Record<string, number>, image?: string, model = 'gemini-image-x') => ({
    candidates: [
      { content: { role: 'model', parts: image === undefined ? [{ text: 'An image:' }] : [{ inlineData: { mimeType: 'image/png', data: image } }] }, index: 0 },
    ],
    usageMetadata: meta,
    modelVersion: model,
    responseId: 'r1',
  });
  const running = { promptTokenCount: 30, candidatesTokenCount: 1, totalTokenCount: 31 };
  const final = { promptTokenCount: 30, candidatesTokenCount: 7_990, thoughtsTokenCount: 10, totalTokenCount: 8_030 };
  const geminiWant = { usage: { model: 'gemini-image-x', input_tokens: 30, output_tokens: 8_000 }, basis: 'reported' };

  it("Gemini: the stream's last usageMetadata counts, in an element past 8 MiB, streamed as a JSON array, as SSE, or one whole answer", () => {
    const chunks = [geminiChunk(running), geminiChunk(running, IMAGE), geminiChunk(final, IMAGE)];
    expect(meter(GEMINI, JSON_TYPE, Buffer.from(JSON.stringify(chunks)))).toEqual(geminiWant);
    expect(meter(GEMINI, SSE, Buffer.from(chunks.map((c) => event(undefined, c)).join('')))).toEqual(geminiWant);
    expect(meter(GEMINI, JSON_TYPE, Buffer.from(JSON.stringify(geminiChunk(final, IMAGE))))).toEqual(geminiWant);
    // Code Assist's wrapper: `{response: …, traceId}`.
    const wrapped = chunks.map((c) => ({ response: c, traceId: 't' }));
    expect(meter(CODE_ASSIST, JSON_TYPE, Buffer.from(JSON.stringify(wrapped)))).toEqual(geminiWant);
    expect(meter(CODE_ASSIST, SSE, Buffer.from(wrapped.map((c) => event(undefined, c)).join('')))).toEqual(geminiWant);
  });

  it('Gemini: a large element that cannot be read after a smaller usage makes the answer unknown, not the earlier usage', () => {
    // Its usageMetadata is past the bound a member may hold.
    const unreadable = JSON.stringify([geminiChunk(running), geminiChunk({ ...final, pad: 'p'.repeat(MAX_MEMBER_BYTES) } as never, IMAGE)]);
    expect(meter(GEMINI, JSON_TYPE, Buffer.from(unreadable))).toMatchObject({ usage: undefined, basis: 'reported' });
    const sse = event(undefined, geminiChunk(running)) + event(undefined, `{"usageMetadata":${JSON.stringify(final)},"pad":"${IMAGE}"`);
    expect(meter(GEMINI, SSE, Buffer.from(sse))).toMatchObject({ usage: undefined, basis: 'reported' });
    // Abandoned, it is partial: what was reported so far is the floor.
    const partial = meter(GEMINI, SSE, Buffer.from(sse), 64 * 1024, 'abandon');
    expect(partial.basis).toBe('partial');
    expect(partial.usage!.output_tokens).toBeGreaterThan(IMAGE.length / 4);
  });

  it('Chat Completions and Anthropic: a final chunk or message_delta past 8 MiB gives its usage', () => {
    const chat =
      event(undefined, { id: 'c', model: 'gpt-audio-x', choices: [{ index: 0, delta: { content: 'hi' } }], usage: null }) +
      event(undefined, {
        id: 'c',
        model: 'gpt-audio-x',
        choices: [{ index: 0, delta: { audio: { data: IMAGE } } }],
        usage: { prompt_tokens: 9, completion_tokens: 4_000 },
      }) +
      event(undefined, '[DONE]');
    expect(meter(CHAT, SSE, Buffer.from(chat))).toEqual({ usage: { model: 'gpt-audio-x', input_tokens: 9, output_tokens: 4_000 }, basis: 'reported' });
    const anthropic =
      event('message_start', { type: 'message_start', message: { model: 'claude-x', usage: { input_tokens: 15, output_tokens: 1 } } }) +
      event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', note: IMAGE }, usage: { output_tokens: 6_000 } });
    expect(meter(ANTHROPIC, SSE, Buffer.from(anthropic))).toEqual({ usage: { model: 'claude-x', input_tokens: 15, output_tokens: 6_000 }, basis: 'reported' });
  });

  it('the bound is where scanning starts: an event just under it is parsed whole as before', () => {
    const under = {
      type: 'response.completed',
      response: { model: 'm', output: 'x'.repeat(MAX_EVENT_BYTES - 200), usage: { input_tokens: 1, output_tokens: 2 } },
    };
    expect(meter(RESPONSES, SSE, Buffer.from(event('response.completed', under)))).toEqual({
      usage: { model: 'm', input_tokens: 1, output_tokens: 2 },
      basis: 'reported',
    });
  });
});
