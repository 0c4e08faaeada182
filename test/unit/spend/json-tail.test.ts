// usageAtEnd (src/spend/core/meters/json-tail.ts): the usage of a whole JSON answer past the meters' bound,
// read from its last bytes; only a usage object that is the top-level object's last member.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { usageAtEnd } from '../../../src/spend/core/meters/json-tail.ts';
import { answerText, SPACE } from '../../helpers/json-texts.ts';
import { JsonBody } from '../../../src/spend/core/meters/json.ts';

describe('usageAtEnd', () => {
  it("reads OpenAI's embeddings tail, with the model just before the usage", () => {
    expect(usageAtEnd('0.1,0.2]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":12,"total_tokens":12}}')).toEqual({
      model: 'text-embedding-3-large',
      usage: { prompt_tokens: 12, total_tokens: 12 },
    });
    expect(usageAtEnd('], "usage" : {"input_tokens": 3, "output_tokens": {"x": "}"}} }\n')).toEqual({ usage: { input_tokens: 3, output_tokens: { x: '}' } } });
  });

  it('takes a key that ends in "usage" or "model" after an escaped quote for neither, as JSON.parse does', () => {
    // `"\"usage"` is the key `"usage`: JSON.parse's usage is the first member, which is not in the tail's reach here.
    const forged = '{"usage":{"prompt_tokens":5},"\\"usage":{"prompt_tokens":0}}';
    expect((JSON.parse(forged) as { usage: unknown }).usage).toEqual({ prompt_tokens: 5 });
    expect(usageAtEnd(forged)).toBeUndefined();
    const model = '{"data":[],"\\"model":"cheap","usage":{"prompt_tokens":7}}';
    expect((JSON.parse(model) as { model?: unknown }).model).toBeUndefined();
    expect(usageAtEnd(model)).toEqual({ usage: { prompt_tokens: 7 } });
  });

  it('takes no usage that is not the last member of the top-level object', () => {
    expect(usageAtEnd(',"usage":{"prompt_tokens":1},"model":"m"}')).toBeUndefined();
    expect(usageAtEnd('"usage":{"prompt_tokens":1}}')).toBeUndefined(); // nothing before it: not known to be a key
    expect(usageAtEnd('{"usage":{"prompt_tokens":1}}]}')).toBeUndefined();
    expect(usageAtEnd('"a":{"usage":{"prompt_tokens":1}}}')).toBeUndefined();
    expect(usageAtEnd('"usage":{"prompt_tokens":1}')).toBeUndefined();
    expect(usageAtEnd('"usage":{"prompt_tokens":1}}x')).toBeUndefined();
    expect(usageAtEnd('"text":"say \\"usage\\":{\\"prompt_tokens\\":0}}"}')).toBeUndefined();
    expect(usageAtEnd('no usage here')).toBeUndefined();
  });
});

describe('usageAtEnd against JSON.parse', () => {
  it("gives, from any tail of a valid answer, JSON.parse's usage and model or nothing", () => {
    let read = 0;
    fc.assert(
      fc.property(answerText, fc.constantFrom(...SPACE), fc.nat(), fc.boolean(), (text, space, at, nearEnd) => {
        const whole = `${text}${space}`;
        const parsed = JSON.parse(whole) as Record<string, unknown>;
        // The tail starts anywhere: often in the last bytes, where the usage is.
        const cut = nearEnd ? Math.max(0, whole.length - (at % 160)) : at % (whole.length + 1);
        const got = usageAtEnd(whole.slice(cut));
        if (got === undefined) return;
        read += 1;
        expect(got.usage).toEqual(parsed['usage']);
        if (got.model !== undefined) expect(got.model).toBe(parsed['model']);
      }),
      { numRuns: 5000 },
    );
    // The property is not met by reading nothing: the generator gives readable tails often.
    expect(read).toBeGreaterThan(150);
  });
});

describe('JsonBody past its bound keeps the end of the body', () => {
  it('holds at most about the tail, and gives the last bytes', () => {
    const body = new JsonBody(100);
    for (let i = 0; i < 5000; i++) body.push(Buffer.from(`${String(i).padStart(30, '0')},`));
    expect(body.overflowed).toBe(true);
    expect(body.parse()).toBeUndefined();
    const tail = body.tail().toString();
    expect(tail.length).toBe(64 * 1024);
    expect(tail.endsWith(`${String(4999).padStart(30, '0')},`)).toBe(true);
  });
});
