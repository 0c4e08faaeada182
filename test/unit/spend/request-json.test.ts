// The strict reader of a metered request's body (spend/request/request-json.ts): what it admits, what it
// refuses, the facts it collects, whole or in pieces of any size.
import { describe, expect, it } from 'vitest';
import { RequestJsonReader } from '../../../src/spend/request/request-json.ts';

function read(text: string, lowerNames = true, step = 0) {
  const bytes = Buffer.from(text);
  const reader = new RequestJsonReader(lowerNames);
  let reason: string | undefined;
  if (step === 0) reason = reader.push(bytes);
  else for (let i = 0; i < bytes.length && reason === undefined; i += step) reason = reader.push(bytes.subarray(i, i + step));
  return { reason: reason ?? reader.end(), facts: reader.facts() };
}

const admitted: [string, boolean, object][] = [
  [
    '{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"hi \\"x\\" \\u00e9 \\n"}],"stream":true}',
    true,
    { model: 'gpt-4o', maxOutputTokens: 100, continues: null },
  ],
  [' {"a":[1,-2.5e+3,0,true,false,null,{},[]],"b":{"c":{"d":[[[]]]}},"max_output_tokens":7} \n', true, { model: null, maxOutputTokens: 7, continues: null }],
  ['{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":512}}', false, { model: null, maxOutputTokens: 512, continues: null }],
  ['{"Contents":[],"generation_config":{"MaxOutputTokens":5}}', false, { model: null, maxOutputTokens: 5, continues: null }],
  [
    '{"model":"gemini-2.5-pro","request":{"contents":[],"generationConfig":{"maxOutputTokens":99},"cachedContent":"c/1"}}',
    false,
    { model: 'gemini-2.5-pro', maxOutputTokens: 99, continues: 'c/1' },
  ],
  ['{"model":"gpt-5","previous_response_id":"resp_123","input":"hi"}', true, { model: 'gpt-5', maxOutputTokens: null, continues: 'resp_123' }],
  ['{"model":"gpt-5","conversation":{"id":"conv_1"}}', true, { model: 'gpt-5', maxOutputTokens: null, continues: 'object' }],
  ['{"model":"gpt-5","conversation":null,"previous_response_id":null}', true, { model: 'gpt-5', maxOutputTokens: null, continues: null }],
  [`{"messages":[{"model":"inner","max_tokens":5}],"model":"${'m'.repeat(300)}"}`, true, { model: '_other', maxOutputTokens: null, continues: null }],
];

const refused: [string, RegExp][] = [
  ['{"model":"x","Stream":true}', /top-level member name/],
  ['{"stream":true,"stream":false}', /alike/],
  ['{"str\\u0065am":1,"stream":2}', /alike/],
  ['{"a":{"ſtream":1,"stream":2}}', /alike/],
  ['{"a":{"b":1,"B":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"_B":12}}', /alike/],
  ['{"generation_config":{},"generationConfig":{}}', /alike|top-level/],
  ['{"model":"x",/*c*/"stream":true}', /not JSON|comment/],
  ['{"a":1}//', /more than one|comment/],
  ['\uFEFF{"model":"x"}', /byte order mark/],
  ['{"model":"x",}', /trailing comma/],
  ['{"a":[1,]}', /trailing comma/],
  ['{"model":"x"} {}', /more than one/],
  ['{"model":"x"', /ends inside/],
  ['', /ends inside/],
  ['[1]', /not one JSON object/],
  ['{"a":01}', /not JSON/],
  ['{"a":1.}', /cut short/],
  ['{"a":NaN}', /not JSON/],
  ["{'a':1}", /not JSON/],
  ['{"a":"\\x"}', /escape/],
  ['{"a":tru}', /not JSON/],
  ['{"a":{"a\u0001":2}}', /control character/],
  ['{"a":}', /missing/],
  [`{"a":${'['.repeat(200)}${']'.repeat(200)}}`, /deeper than 128/],
  [`{"x${'y'.repeat(2000)}":1}`, /over 1024 bytes/],
];

describe('the strict reader of a request body', () => {
  it.each(admitted)('admits %s, with its facts, in pieces of any size', (text, lower, facts) => {
    for (const step of [0, 1, 2, 3, 7, 64]) expect(read(text, lower, step), `pieces of ${step}`).toEqual({ reason: undefined, facts });
  });

  it.each(refused)('refuses %s', (text, why) => {
    for (const step of [0, 1, 3]) expect(read(text, true, step).reason, `pieces of ${step}`).toMatch(why);
  });

  it('never echoes what the agent wrote in a reason', () => {
    expect(read('{"model":"x","SecretName":"sk-123"}').reason).not.toMatch(/SecretName|sk-123/);
  });
});

describe('what an agent cannot make the reader hold or misread (a hostile review)', () => {
  it('a cap written longer than what is kept is read as the highest, never as its first characters', () => {
    // `0.000…5e304` is 5000 to any parser; its first 257 characters read 0.
    const long = `0.${'0'.repeat(300)}5e304`;
    for (const step of [0, 7]) {
      const { reason, facts } = read(`{"generationConfig":{"maxOutputTokens":${long}}}`, false, step);
      expect(reason).toBeUndefined();
      expect(facts.maxOutputTokens).toBe(Number.MAX_SAFE_INTEGER);
    }
    expect(read('{"generationConfig":{"maxOutputTokens":5000}}', false).facts.maxOutputTokens).toBe(5000);
  });

  it('refuses a body holding over 1 MiB of member names in open objects; the same names in objects that close pass', () => {
    const name = (i: number) => `n${i}${'x'.repeat(1000)}`;
    const members = (from: number, count: number) => Array.from({ length: count }, (_, i) => `"${name(from + i)}":0`).join(',');
    const one = `{"a":{${members(0, 1100)}}}`;
    const { reason } = read(one, false, 65_536);
    expect(reason).toMatch(/more than 1048576 bytes of member names in open objects/);
    // A hundred objects of 500 names each, one after another: never more than one open at once.
    const many = `{"a":[${Array.from({ length: 100 }, (_, k) => `{${members(k * 500, 500)}}`).join(',')}]}`;
    expect(read(many, false, 65_536).reason).toBeUndefined();
  });
});
