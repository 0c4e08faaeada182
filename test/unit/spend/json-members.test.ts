// The whole-JSON answer's member reader (json-members.ts): the members it reads match JSON.parse's
// wherever the pieces are cut, what it refuses, and that a large answer's chunks are not held.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerMeter, SMALL_JSON_BYTES } from '../../../src/spend/core/meters/index.ts';
import { MAX_MEMBER_BYTES } from '../../../src/spend/core/meters/json-members.ts';
import { answerText, scanMembers, SPACE } from '../../helpers/json-texts.ts';

const WANTED = ['model', 'usage'];

function members(text: string | Buffer, cuts: number[] = []): Record<string, unknown> | undefined {
  const found = scanMembers(WANTED, text, cuts);
  return found === undefined ? undefined : { ...found };
}

/** What JSON.parse makes of the wanted members. */
function expected(text: string): Record<string, unknown> {
  const value = JSON.parse(text) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of WANTED) if (key in value) out[key] = value[key];
  return out;
}

// Each vendor's whole answer as it orders its members (usage last, or followed by others).
const ANSWERS = {
  anthropic: `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"h\\u00e9 \\"usage\\": {} } ]"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_read_input_tokens":3,"output_tokens":7}}`,
  chat: `{"id":"c","object":"chat.completion","model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":"é€😀"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}},"service_tier":"default","system_fingerprint":"fp"}`,
  responses: ` \n{"id":"r","object":"response","model":"gpt-y","output":[{"type":"message","content":[{"type":"output_text","text":"x"}]}],"usage":{"input_tokens":9,"output_tokens":4},"user":null,"metadata":{"usage":"not this","model":"nor this"}}\r\n`,
};

describe('JsonMembers', () => {
  it("reads each vendor's usage and model as JSON.parse does, the body cut at every position and at every pair", () => {
    for (const text of Object.values(ANSWERS)) {
      const want = expected(text);
      const length = Buffer.byteLength(text);
      for (let cut = 0; cut <= length; cut++) expect(members(text, [cut])).toEqual(want);
      for (let a = 0; a <= length; a += 7) for (let b = a; b <= length; b += 5) expect(members(text, [a, b])).toEqual(want);
    }
  });

  it("reads any valid answer's usage and model as JSON.parse does, cut anywhere in two (repeated keys, escaped keys, keys ending in a quote)", () => {
    fc.assert(
      fc.property(answerText, fc.constantFrom(...SPACE), fc.nat(), fc.nat(), (text, space, a, b) => {
        const whole = `${space}${text}${space}`;
        const length = Buffer.byteLength(whole);
        const first = a % (length + 1);
        expect(members(whole, [first, first + (b % (length - first + 1))])).toEqual(expected(whole));
      }),
      { numRuns: 3000 },
    );
  });

  it('takes top-level keys only, after their escapes, the last of a repeated key', () => {
    expect(members('{"a":{"usage":1,"model":"in"},"b":["usage","model"],"us\\u0061ge":{"n":1}}')).toEqual({ usage: { n: 1 } });
    expect(members('{"model":"a","model":"b"}')).toEqual({ model: 'b' });
    expect(members('{"__proto__":{"x":1},"model":"m"}')).toEqual({ model: 'm' });
    expect(members('{}')).toEqual({});
  });

  it('refuses what is not one top-level object closed at the end, and a wanted member that does not parse or is too large', () => {
    for (const bad of [
      '',
      '   ',
      '[{"usage":{}}]',
      '"usage"',
      '{"usage":{"a":1}}x',
      '{"usage":{"a":1}}{}',
      '{"usage":{"a":1}',
      '{"usage":{"a":1},"x":"}',
      '{"usage":}',
      '{"usage":{"a":1,}}',
      '{"model":"m"]',
      '\ufeff{"model":"m"}',
      `{"usage":{"pad":"${'p'.repeat(MAX_MEMBER_BYTES)}"}}`,
    ])
      expect(members(bad), bad).toBeUndefined();
    // Other members are not parsed: only their strings and brackets are followed.
    expect(members('{"x":[1,,2],"usage":{"a":1}}')).toEqual({ usage: { a: 1 } });
  });

  it('holds none of a 4 MiB answer past its first 64 KiB: only a wanted member cut by a piece end, copied', () => {
    const text = JSON.stringify({
      model: 'gpt-x',
      choices: [{ message: { content: 'y'.repeat(4 * 1024 * 1024) } }],
      usage: { prompt_tokens: 3, completion_tokens: 1_048_576 },
    });
    const bytes = Buffer.from(text);
    const meter = answerMeter({ api: 'openai', route: 'openai-chat', requestModel: null }, 200, 'application/json')!;
    const held = meter as unknown as { held: number };
    let most = 0;
    let mostPast = 0;
    for (let at = 0; at < bytes.length; at += 16 * 1024) {
      meter.push(bytes.subarray(at, at + 16 * 1024));
      most = Math.max(most, held.held);
      if (at >= SMALL_JSON_BYTES) mostPast = Math.max(mostPast, held.held);
    }
    // Pieces of 16 KiB, 4 MiB in all: the first 64 KiB held (a small answer is parsed whole), then
    // at most a few bytes of a member (before: every piece, to the end).
    expect(most).toBe(SMALL_JSON_BYTES);
    expect(mostPast).toBeLessThan(256);
    expect(meter.end()).toEqual({ usage: { model: 'gpt-x', input_tokens: 3, output_tokens: 1_048_576 }, basis: 'reported' });
  });
});
