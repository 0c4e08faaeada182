import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeakGuard, REDACTION, redactAll, SecretScanner, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { scale } from '../hostile/scale.ts';
import { canaryForms, findLeak } from '../helpers/leak-canary.ts';

// The streaming scanner over a body cut anywhere: whatever the chunking, the agent gets what a
// scan of the whole body would give, no part of a secret slips out at a chunk boundary, and the
// mask keeps every length.

// KEYWAY_HOSTILE=long npx vitest run <this file> for the long form.
const RUNS = scale(300, 20_000);
const needles = secretNeedles({ kind: 'token', value: CANARY });
/** A secret with characters JSON and URLs escape, whose JSON-string form differs from it. */
const AWKWARD = 'kw"canary\\7f/3a9c+1e=5b2d';
const awkwardNeedles = secretNeedles({ kind: 'token', value: AWKWARD });

/**
 * The forms of `secret` the guard must catch, and each base64 form also wrapped in lines at any
 * point in it (CRLF or LF), as MIME (76), PEM (64) and GitHub's contents API (60) wrap base64:
 * these forms are under 60 characters, so a line break falls in them once at most.
 */
function formsOf(secret: string): fc.Arbitrary<string> {
  const entries = Object.entries(canaryForms(secret)).filter(([name]) => !name.includes('half'));
  const plain = entries.map(([, form]) => form);
  const base64 = entries.filter(([name]) => name.startsWith('base64')).map(([, form]) => form);
  const wrapped = fc.tuple(fc.constantFrom(...base64), fc.nat(), fc.constantFrom('\n', '\r\n')).map(([form, at, eol]) => {
    const p = 1 + (at % (form.length - 1));
    return `${form.slice(0, p)}${eol}${form.slice(p)}`;
  });
  return fc.oneof(fc.constantFrom(...plain), wrapped);
}

/** Runs `body` through a LeakGuard in the given chunks and returns what came out. */
async function throughGuard(chunks: Buffer[], style: 'marker' | 'mask', list = needles): Promise<{ output: Buffer; redactions: number }> {
  const scanner = new SecretScanner(list, style);
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
const plantedBody = (secret: string) =>
  fc
    .array(
      fc.oneof(
        fc.string({ maxLength: 40 }),
        formsOf(secret).map((f) => ({ secret: f })),
        fc.tuple(formsOf(secret), fc.nat()).map(([f, n]) => `${f.slice(0, 1 + (n % DECOY_MAX))} `),
      ),
      { maxLength: 30 },
    )
    // Starts and ends with a space: no part of a form at an edge (the edge-slice property below).
    .map((parts) => ({
      body: Buffer.from(` ${parts.map((p) => (typeof p === 'string' ? p : p.secret)).join('')} `),
      planted: parts.filter((p) => typeof p !== 'string').length,
    }));

/** A body that begins with a form's last characters and ends with another's first (6 or more each). */
const edgeBody = (secret: string) =>
  fc
    .tuple(formsOf(secret), fc.nat(), fc.string({ maxLength: 40 }), formsOf(secret), fc.nat())
    .filter(([a, , , b]) => a.length > 12 && b.length > 12)
    .map(([a, i, middle, b, j]) => {
      const suffix = a.slice(1 + (i % (a.length - 7)));
      const prefix = b.slice(0, 6 + (j % (b.length - 7)));
      return { body: Buffer.from(`${suffix} ${middle} ${prefix}`), suffix, prefix };
    })
    // 6 characters of the form or more, not counting line breaks.
    .filter(({ suffix, prefix }) => unwrap(suffix).length >= 6 && unwrap(prefix).length >= 6);
const unwrap = (s: string) => s.replace(/[\r\n]/g, '');

describe('the leak guard as a stream', () => {
  it.each([
    ['the canary', CANARY, needles],
    ['a secret with a quote, a backslash, a slash', AWKWARD, awkwardNeedles],
  ] as const)('gives what a whole-body scan gives, for any chunking, and leaks no form of %s', async (_name, secret, secretNeedles) => {
    await fc.assert(
      fc.asyncProperty(
        plantedBody(secret),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom('marker' as const, 'mask' as const),
        async ({ body, planted }, points, style) => {
          const whole = redactAll(body, secretNeedles, style);
          const streamed = await throughGuard(cut(body, points), style, secretNeedles);
          expect(streamed.output.equals(whole.output)).toBe(true);
          expect(streamed.redactions).toBe(whole.count);
          expect(whole.count).toBe(planted);
          expect(findLeak(streamed.output, secret)).toBeUndefined();
          if (style === 'mask') expect(streamed.output.length).toBe(body.length);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('redacts a form cut at the start and at the end of the body (a Range window), for any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        edgeBody(CANARY),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom('marker' as const, 'mask' as const),
        async ({ body, suffix, prefix }, points, style) => {
          const whole = redactAll(body, needles, style);
          const streamed = await throughGuard(cut(body, points), style);
          expect(streamed.output.equals(whole.output)).toBe(true);
          expect(streamed.redactions).toBe(whole.count);
          const text = streamed.output.toString('latin1');
          // Line breaks taken out: a wrapped form's slice counts whole.
          expect(unwrap(text).startsWith(unwrap(suffix))).toBe(false);
          expect(unwrap(text).endsWith(unwrap(prefix))).toBe(false);
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

  it('holds back a bounded tail whatever number of line breaks follows the start of a base64 form', () => {
    const b64 = Buffer.from(CANARY).toString('base64');
    const scanner = new SecretScanner(needles, 'mask');
    let out = scanner.scan(Buffer.from(`x ${b64.slice(0, 12)}`)).reduce((n, b) => n + b.length, 0);
    let sent = 2 + 12;
    for (let i = 0; i < 100; i++) {
      out += scanner.scan(Buffer.from('\r\n'.repeat(500))).reduce((n, b) => n + b.length, 0);
      sent += 1000;
      expect(sent - out).toBeLessThanOrEqual(200);
    }
    expect(out + scanner.end().length).toBe(sent);
  });
});
