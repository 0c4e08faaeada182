// Valid JSON texts for the meters' readers to be held to JSON.parse's reading (test/unit/spend's
// json-tail and json-members tests), written out by hand so that they hold what JSON.stringify never writes.
import fc from 'fast-check';
import { JsonMembers, type WantedMembers } from '../../src/spend/core/meters/json-members.ts';

// Repeated keys, keys spelled with escapes, keys that end in a quote, strings that spell keys.
const KEYS = ['"usage"', '"model"', '"\\"usage"', '"\\"model"', '"us\\u0061ge"', '"mod\\u0065l"', '"content"', '"x"'];
const STRINGS = ['"m"', '"gpt-x"', '"usage"', '"model"', '"say \\"usage\\":{\\"a\\":1}}"', '",\\"usage\\":{}}"', '"}"', '"\\\\"'];
export const SPACE = ['', ' ', '\n', ' \r\n\t'];

const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string; object: string; array: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...STRINGS),
    fc.string({ maxLength: 8 }).map((t) => JSON.stringify(t)),
    fc.integer({ min: 0, max: 99 }).map(String),
    fc.constant('null'),
    tie('object'),
    tie('array'),
  ),
  object: fc
    .array(fc.tuple(fc.constantFrom(...SPACE), fc.constantFrom(...KEYS), fc.constantFrom(...SPACE), tie('value')), { maxLength: 5 })
    .map((members) => `{${members.map(([a, key, b, value]) => `${a}${key}${b}:${b}${value}${a}`).join(',')}}`),
  array: fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
})).object;

/** Often a body laid out as the vendors end theirs: the model, then the usage, as the last members (each spelled any way KEYS has). */
export const answerText: fc.Arbitrary<string> = fc
  .tuple(
    jsonText,
    fc.boolean(),
    fc.constantFrom('"model"', ...KEYS),
    fc.constantFrom(...STRINGS),
    fc.constantFrom('"usage"', '"usage"', ...KEYS),
    jsonText,
    fc.constantFrom(...SPACE),
  )
  .map(([object, vendor, modelKey, model, usageKey, usage, space]) => {
    if (!vendor) return object;
    const open = object.slice(0, -1);
    return `${open}${open === '{' ? '' : ','}${space}${modelKey}:${model},${space}${usageKey}${space}:${usage}${space}}`;
  });

/** The members JsonMembers reads of `text` given in pieces cut at `cuts` (undefined: refused). */
export function scanMembers(wanted: WantedMembers, text: string | Buffer, cuts: number[] = []): Record<string, unknown> | undefined {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const members = new JsonMembers(wanted);
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    members.push(bytes.subarray(at, cut));
    at = cut;
  }
  return members.members();
}
