// usageAtEnd (src/spend/meters/json-tail.ts): the usage of a whole JSON answer past the meters' bound,
// read from its last bytes; only a usage object that is the top-level object's last member.
import { describe, expect, it } from 'vitest';
import { usageAtEnd } from '../../../src/spend/meters/json-tail.ts';
import { JsonBody } from '../../../src/spend/meters/json.ts';

describe('usageAtEnd', () => {
  it("reads OpenAI's embeddings tail, with the model just before the usage", () => {
    expect(usageAtEnd('0.1,0.2]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":12,"total_tokens":12}}')).toEqual({
      model: 'text-embedding-3-large',
      usage: { prompt_tokens: 12, total_tokens: 12 },
    });
    expect(usageAtEnd(' "usage" : {"input_tokens": 3, "output_tokens": {"x": "}"}} }\n')).toEqual({ usage: { input_tokens: 3, output_tokens: { x: '}' } } });
  });

  it('takes no usage that is not the last member of the top-level object', () => {
    expect(usageAtEnd('"usage":{"prompt_tokens":1},"model":"m"}')).toBeUndefined();
    expect(usageAtEnd('{"usage":{"prompt_tokens":1}}]}')).toBeUndefined();
    expect(usageAtEnd('"a":{"usage":{"prompt_tokens":1}}}')).toBeUndefined();
    expect(usageAtEnd('"usage":{"prompt_tokens":1}')).toBeUndefined();
    expect(usageAtEnd('"usage":{"prompt_tokens":1}}x')).toBeUndefined();
    expect(usageAtEnd('"text":"say \\"usage\\":{\\"prompt_tokens\\":0}}"}')).toBeUndefined();
    expect(usageAtEnd('no usage here')).toBeUndefined();
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
