import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactAll, redactText, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { redactHeaders } from '../../src/proxy/leak-guard/response-guard.ts';
import { CANARY } from '../helpers/fixtures.ts';

// Header values skip the byte search when they hold no needle (src/proxy/leak-guard/index.ts, mayHoldNeedle): the
// answer must be exactly the byte search's, whatever the value holds.
const SECRET = `${CANARY}-header-Tok3n/+=`;
const needles = secretNeedles({ kind: 'token', value: SECRET });
const byBytes = (value: string) => {
  const { output, count } = redactAll(Buffer.from(value, 'latin1'), needles, 'marker', false);
  return { text: count ? output.toString('latin1') : value, count };
};

describe('leak guard on header values', () => {
  it('gives what the byte search gives, for values with and without the secret in any of its forms', () => {
    const forms = needles.map((n) => n.toString('latin1'));
    const piece = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom(...forms),
      fc.constantFrom(...forms).map((f) => f.slice(0, -1)), // almost a needle
      fc.string({ unit: 'binary', maxLength: 6 }), // characters past U+00FF too
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 5 }), (pieces) => {
        const value = pieces.join('');
        expect(redactText(value, needles)).toEqual(byBytes(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('redacts a needle hidden behind characters latin1 would cut to its bytes, as the byte search does', () => {
    // U+0141 is cut to 0x41 ("A") by latin1 encoding: the byte search sees the needle "A..." here.
    const needle = needles[0]!.toString('latin1');
    const value = `x${String.fromCharCode(0x100 + needle.charCodeAt(0))}${needle.slice(1)}y`;
    expect(redactText(value, needles)).toEqual(byBytes(value));
  });

  it('hands back the very same string when there is nothing to redact', () => {
    const value = 'application/json; charset=utf-8';
    expect(redactText(value, needles).text).toBe(value);
    expect(redactText(value, needles).count).toBe(0);
  });

  it('drops a header whose name holds the secret, matched in lower case (Node lower-cases names), and counts it', () => {
    const mixed = 'kwMixedCase-Secret-9F8e7D';
    const counts: number[] = [];
    const redact = { needles: secretNeedles({ kind: 'token', value: mixed }), onRedacted: (n: number) => counts.push(n) };
    const head = { [`x-echo-${mixed.toLowerCase()}`]: '1', [`x-${Buffer.from(mixed).toString('hex')}`]: '2', 'x-kept': 'fine', 'content-type': 'text/plain' };
    redactHeaders(head, redact);
    expect(head).toEqual({ 'x-kept': 'fine', 'content-type': 'text/plain' });
    expect(counts).toEqual([2]);
  });
});
