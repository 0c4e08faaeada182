import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeakGuard, redactAll, REDACTION, secretNeedles } from '../../src/proxy/leak-guard.ts';
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
  const guard = new LeakGuard(needles, style);
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
  return { output: Buffer.concat(out), redactions: guard.redactions };
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

/** Text with secrets in random forms at random places, and how many were planted. */
const plantedBody = fc
  .array(
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(...forms).map((f) => ({ secret: f })),
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
});
