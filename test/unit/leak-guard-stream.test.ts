import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeakGuard, REDACTION, redactAll, SecretScanner, secretNeedles } from '../../src/proxy/leak-guard.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { scale } from '../hostile/scale.ts';
import { canaryForms, findLeak } from '../helpers/leak-canary.ts';

// The streaming scanner over a body cut anywhere: whatever the chunking, the agent gets what a
// scan of the whole body would give, no part of a secret slips out at a chunk boundary, and the
// mask keeps every length.

// KEYWAY_HOSTILE=long npx vitest run <this file> for the long form.
const RUNS = scale(300, 20_000);
const needles = secretNeedles({ kind: 'token', value: CANARY });
const forms = Object.entries(canaryForms(CANARY))
  .filter(([name]) => !name.includes('half'))
  .map(([, form]) => form);

/** Runs `body` through a LeakGuard in the given chunks and returns what came out. */
async function throughGuard(chunks: Buffer[], style: 'marker' | 'mask'): Promise<{ output: Buffer; redactions: number }> {
  const scanner = new SecretScanner(needles, style);
  const guard = new LeakGuard(scanner);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    guard,
    new Writable({
      write(chunk: Buffer, _e, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return { output: Buffer.concat(out), redactions: scanner.redactions };
}

function cut(body: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (body.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...at, body.length]) {
    // Copies: the guard must not rely on a chunk staying untouched after it returns.
    chunks.push(Buffer.from(body.subarray(from, p)));
    from = p;
  }
  return chunks.filter((c) => c.length > 0);
}

/**
 * Text with secrets in random forms at random places, and how many were planted. Decoys (a form's
 * first bytes, then a space, which no form holds) make the guard hold a tail back and let it go;
 * shorter than half the secret, which findLeak would call a leak.
 */
const DECOY_MAX = Math.ceil(CANARY.length / 2) - 1;
const plantedBody = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(...forms).map((f) => ({ secret: f })),
      fc.tuple(fc.constantFrom(...forms), fc.nat()).map(([f, n]) => `${f.slice(0, 1 + (n % DECOY_MAX))} `),
    ),
    { maxLength: 30 },
  )
  .map((parts) => ({
    body: Buffer.from(parts.map((p) => (typeof p === 'string' ? p : p.secret)).join('')),
    planted: parts.filter((p) => typeof p !== 'string').length,
  }));

describe('the leak guard as a stream', () => {
  it('gives what a whole-body scan gives, for any chunking, and leaks no form of the secret', async () => {
    await fc.assert(
      fc.asyncProperty(
        plantedBody,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom('marker' as const, 'mask' as const),
        async ({ body, planted }, points, style) => {
          const whole = redactAll(body, needles, style);
          const streamed = await throughGuard(cut(body, points), style);
          expect(streamed.output.equals(whole.output)).toBe(true);
          expect(streamed.redactions).toBe(whole.count);
          expect(whole.count).toBe(planted);
          expect(findLeak(streamed.output, CANARY)).toBeUndefined();
          if (style === 'mask') expect(streamed.output.length).toBe(body.length);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('redacts a shorter form held back for a longer one that never completed, at the end of the stream', async () => {
    // The unpadded base64 is a prefix of the padded one: mid-stream the guard waits to see which.
    const unpadded = Buffer.from(CANARY).toString('base64').replace(/=+$/, '');
    const body = Buffer.from(`x ${unpadded}`);
    for (const style of ['marker', 'mask'] as const) {
      const { output, redactions } = await throughGuard(cut(body, [2]), style);
      expect(findLeak(output, CANARY)).toBeUndefined();
      expect(redactions).toBe(1);
    }
  });

  it('cuts a secret one byte per chunk and still redacts it whole, passing nothing of it', async () => {
    const body = Buffer.from(`before ${CANARY} after`);
    const { output, redactions } = await throughGuard(cut(body, [...body.keys()]), 'marker');
    expect(output.toString()).toBe(`before ${REDACTION.toString()} after`);
    expect(redactions).toBe(1);
  });

  it('redacts a body made of nothing but echoes, each one counted', async () => {
    const body = Buffer.from(`${CANARY},`.repeat(20_000));
    const { output, redactions } = await throughGuard(cut(body, [65_536, 131_072, 200_000]), 'mask');
    expect(redactions).toBe(20_000);
    expect(output.toString()).toBe(`${'*'.repeat(CANARY.length)},`.repeat(20_000));
  });

  it('passes a body of one repeated byte that begins a needle through unchanged, however it is cut', async () => {
    // Every chunk ends with what could be a needle's first byte, held back and let go with the next.
    const first = needles.map((n) => n[0]!).find((b) => b >= 0x61 && b <= 0x7a) ?? needles[0]![0]!;
    const body = Buffer.alloc(200_000, first);
    for (const points of [[1, 2, 3], [...Array(50).keys()].map((i) => i * 4001), [65_535, 65_536, 131_071]]) {
      const { output, redactions } = await throughGuard(cut(body, points), 'mask');
      expect(output.equals(body)).toBe(true);
      expect(redactions).toBe(0);
    }
  });

  it('finds a needle that overlaps itself across a cut, after a false start in the held tail', () => {
    // The tail "abcab" is held; "abcab" + "c..." fails at its start but "ab" + "cabd..." completes it.
    const needle = Buffer.from('abcabd-needle');
    for (const [a, b] of [
      ['x abcab', 'cabd-needle y'],
      ['x abcabcab', 'd-needle y'],
      ['x abc', 'abd-needle y'],
    ] as const) {
      const scanner = new SecretScanner([needle], 'marker');
      const output = Buffer.concat([...scanner.scan(Buffer.from(a)), ...scanner.scan(Buffer.from(b)), scanner.end()]).toString();
      const whole = redactAll(Buffer.from(a + b), [needle]).output.toString();
      expect(output).toBe(whole);
      expect(scanner.redactions).toBe(1);
      expect(output).not.toContain('abcabd');
    }
  });
});
