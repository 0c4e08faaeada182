import { describe, expect, it } from 'vitest';
import { redactAll, SecretScanner, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { canaryForms, findLeak } from '../helpers/leak-canary.ts';

// The needles are looked for by a stretch of at most 6 bytes when that stretch starts with a byte
// rare in text (leak-guard/plan.ts, searchedPart): Node searches such a string by memchr, many
// times faster in binary and base64 bodies. The rest of the needle is then compared where the
// stretch is found: a near miss is no match, and a needle cut by the end of the data is no error.

const needles = secretNeedles({ kind: 'token', value: CANARY });
const base64Forms = Object.entries(canaryForms(CANARY))
  .filter(([name]) => name.startsWith('base64') && !name.includes('half'))
  .map(([, form]) => form);

/** Bytes 0x80-0xff in a fixed pseudo-random order: binary, and no byte of any needle, nor a line break. */
function binary(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, x = seed; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 0x80 | (x >>> 24);
  }
  return out;
}

function stream(chunks: Buffer[]): { output: Buffer; redactions: number } {
  const scanner = new SecretScanner(needles, 'mask');
  const out = chunks.flatMap((c) => scanner.scan(c));
  out.push(scanner.end());
  return { output: Buffer.concat(out), redactions: scanner.redactions };
}

describe('the leak guard searching needles by a short stretch', () => {
  it('finds each base64 form wrapped at a single line feed in a binary body, in chunks cut around it', () => {
    for (const form of base64Forms) {
      for (let p = 1; p < form.length; p++) {
        for (const eol of ['\n', '\r\n']) {
          const before = binary(200, p);
          const body = Buffer.concat([before, Buffer.from(`${form.slice(0, p)}${eol}${form.slice(p)}`), binary(200, p + 1)]);
          const whole = redactAll(body, needles, 'mask');
          expect(whole.count, `${form} broken at ${p}`).toBe(1);
          expect(findLeak(whole.output, CANARY)).toBeUndefined();
          // Cut at the break, inside the first part, and right after the needle's first byte.
          for (const cut of [before.length + p, before.length + Math.floor(p / 2), before.length + 1]) {
            const streamed = stream([body.subarray(0, cut), body.subarray(cut)]);
            expect(streamed.output.equals(whole.output), `${form} broken at ${p}, cut at ${cut}`).toBe(true);
            expect(streamed.redactions).toBe(1);
          }
        }
      }
    }
  });

  it('takes no near miss for a needle: the bytes after the searched stretch are compared too', () => {
    // Each needle with its last byte changed: the searched stretch (never the last byte) is there,
    // the needle is not. Dropped when it still holds another needle (a padded form holds the unpadded one).
    const misses = needles
      .map((n) => Buffer.concat([n.subarray(0, -1), Buffer.from(n[n.length - 1] === 0x41 ? 'B' : 'A')]))
      .filter((m) => !needles.some((n) => m.includes(n)));
    expect(misses.length).toBeGreaterThan(needles.length / 2);
    for (const eol of ['', '\n']) {
      // With a line feed the base64 needles are found by their pieces; without, searched whole.
      const body = Buffer.concat(misses.flatMap((m, i) => [binary(50, i), m, Buffer.from(eol)]));
      const { output, count } = redactAll(body, needles, 'mask');
      expect(count).toBe(0);
      expect(output.equals(body)).toBe(true);
      const withCanary = Buffer.concat([body, Buffer.from(CANARY), binary(50, 99)]);
      expect(redactAll(withCanary, needles, 'mask').count).toBe(1);
      expect(stream([withCanary.subarray(0, 300), withCanary.subarray(300)]).redactions).toBe(1);
    }
  });

  it('passes over a needle cut short by the end of the data, and redacts its start there', () => {
    for (const needle of needles) {
      for (const eol of ['', '\n']) {
        const body = Buffer.concat([binary(100, 7), Buffer.from(eol), needle.subarray(0, -1)]);
        const { output, count } = redactAll(body, needles, 'mask');
        // The slice at the end (the needle but its last byte) is redacted as an edge slice.
        expect(count, needle.toString()).toBe(1);
        expect(output.subarray(-needle.length + 1).toString()).toBe('*'.repeat(needle.length - 1));
        expect(stream([body]).output.equals(output)).toBe(true);
      }
    }
  });
});
