// withIncludeUsage (src/spend/request/include-usage.ts): an OpenAI streamed Chat Completions request gets
// stream_options.include_usage, with every other member's bytes kept; a body keyway does not fully
// understand is left alone (undefined).
import { describe, expect, it } from 'vitest';
import { usageReported, withIncludeUsage } from '../../../src/spend/request/include-usage.ts';

const edit = (text: string): string | undefined => withIncludeUsage(Buffer.from(text))?.toString('utf8');
const parsed = (text: string): Record<string, unknown> => JSON.parse(edit(text) ?? 'null') as Record<string, unknown>;

describe('withIncludeUsage', () => {
  it('adds stream_options at the front of a streamed request, every other byte as it was', () => {
    const body =
      '{ "model": "gpt-4o",\n  "stream": true, "seed": 12345678901234567890, "temperature": 1.0, "messages": [{"role":"user","content":"a \\"}{ \\u00e9"}] }';
    const out = edit(body);
    expect(out).toBe(
      `{"stream_options":{"include_usage":true}, "model": "gpt-4o",\n  "stream": true, "seed": 12345678901234567890, "temperature": 1.0, "messages": [{"role":"user","content":"a \\"}{ \\u00e9"}] }`,
    );
    expect(JSON.parse(out!)).toMatchObject({ stream: true, stream_options: { include_usage: true }, messages: [{ content: 'a "}{ é' }] });
  });

  it('writes into an existing stream_options, keeping its other members; replaces include_usage false and a null stream_options', () => {
    expect(edit('{"stream":true,"stream_options":{"continuous_usage_stats":true}}')).toBe(
      '{"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}',
    );
    expect(edit('{"stream":true,"stream_options":{ }}')).toBe('{"stream":true,"stream_options":{"include_usage":true }}');
    expect(edit('{"stream":true,"stream_options":{"include_usage": false, "x": [1]}}')).toBe(
      '{"stream":true,"stream_options":{"include_usage": true, "x": [1]}}',
    );
    expect(edit('{"stream":true,"stream_options":{"include_usage":null}}')).toBe('{"stream":true,"stream_options":{"include_usage":true}}');
    expect(edit('{"stream":true,"stream_options": null , "n": 1}')).toBe('{"stream":true,"stream_options": {"include_usage":true} , "n": 1}');
  });

  it('leaves alone what needs nothing: not streamed, already asked for', () => {
    expect(edit('{"model":"m","messages":[]}')).toBeUndefined();
    expect(edit('{"stream":false}')).toBeUndefined();
    expect(edit('{"stream":"true"}')).toBeUndefined();
    expect(edit('{"stream":1}')).toBeUndefined();
    expect(edit('{"stream":true,"stream_options":{"include_usage":true}}')).toBeUndefined();
  });

  it('leaves alone what it does not understand: not JSON, not an object, not UTF-8, a BOM, stream_options of another type', () => {
    expect(edit('')).toBeUndefined();
    expect(edit('stream=true')).toBeUndefined();
    expect(edit('[{"stream":true}]')).toBeUndefined();
    expect(edit('{"stream":true')).toBeUndefined();
    expect(withIncludeUsage(Buffer.concat([Buffer.from('{"stream":true,"x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]))).toBeUndefined();
    expect(withIncludeUsage(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"stream":true}')]))).toBeUndefined();
    expect(edit('{"stream":true,"stream_options":"yes"}')).toBeUndefined();
    expect(edit('{"stream":true,"stream_options":[]}')).toBeUndefined();
  });

  it('duplicate keys: read as JSON.parse reads them (the last), and sent with that one reading only', () => {
    const out = edit('{"stream": false, "model": "m", "stream": true}');
    expect(out).toBe('{"stream":true,"model":"m","stream_options":{"include_usage":true}}');
    // The last says false: not a stream, nothing to change.
    expect(edit('{"stream": true, "stream": false}')).toBeUndefined();
    // A key spelled with an escape is the same key.
    expect(parsed('{"stream":false,"str\\u0065am":true}')).toEqual({ stream: true, stream_options: { include_usage: true } });
    expect(parsed('{"stream":true,"stream_options":{"include_usage":false},"stream_options":{"x":1}}')).toEqual({
      stream: true,
      stream_options: { x: 1, include_usage: true },
    });
    expect(parsed('{"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}')).toEqual({
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(edit('{"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}')).toBeUndefined();
  });
});

describe('usageReported: what may go under a budget', () => {
  const reported = (text: string) => usageReported(Buffer.from(text));

  it('admits a whole answer (no stream, false, null) and a stream that asks for its usage once', () => {
    expect(reported('{"model":"m"}')).toBe(true);
    expect(reported('{"stream":false}')).toBe(true);
    expect(reported('{"stream":null}')).toBe(true);
    expect(reported('{"stream":true,"stream_options":{"include_usage":true}}')).toBe(true);
    // What withIncludeUsage makes of a plain stream, duplicate keys included.
    expect(usageReported(withIncludeUsage(Buffer.from('{"stream":true}'))!)).toBe(true);
    expect(usageReported(withIncludeUsage(Buffer.from('{"stream":false,"stream":true}'))!)).toBe(true);
  });

  it('refuses what a server might stream without usage: a stream of another type, duplicates, no JSON object, a BOM', () => {
    expect(reported('{"stream":"true"}')).toBe(false);
    expect(reported('{"stream":1}')).toBe(false);
    expect(reported('{"stream":true}')).toBe(false);
    expect(reported('{"stream":true,"stream_options":{"include_usage":false}}')).toBe(false);
    expect(reported('{"stream":true,"stream_options":null}')).toBe(false);
    expect(reported('{"stream":true,"stream":false}')).toBe(false);
    expect(reported('{"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}')).toBe(false);
    expect(reported('{"stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":true}}')).toBe(false);
    expect(reported('[{"stream":false}]')).toBe(false);
    expect(reported('stream=true')).toBe(false);
    expect(reported('')).toBe(false);
    expect(usageReported(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"stream":false}')]))).toBe(false);
  });
});
