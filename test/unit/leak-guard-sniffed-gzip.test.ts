import { gunzipSync, gzipSync, constants } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { checkWholeGzip, GzipWatch, mayBeGzip } from '../../src/proxy/leak-guard/sniffed-gzip.ts';

// A gzip file in a body that does not say so: its bytes go on unchanged while what they decode to
// holds no needle nor the start of one; a needle stops them before the bytes that complete it.

const SECRET = 'kw-gzip-canary-0123456789abcdef';
const needles = secretNeedles({ kind: 'token', value: SECRET });

/** Runs `body` through a GzipWatch in pieces of `size` bytes: what came out, and the error if it failed. */
async function watch(body: Buffer, size: number): Promise<{ out: Buffer; error: Error | undefined; redacted: number }> {
  let redacted = 0;
  const stage = new GzipWatch({ needles, onRedacted: (n) => (redacted += n) });
  const out: Buffer[] = [];
  stage.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<Error | undefined>((resolve) => {
    stage.once('end', () => resolve(undefined));
    stage.once('error', resolve);
  });
  for (let at = 0; at < body.length; at += size) {
    if (stage.destroyed) break;
    await new Promise<void>((resolve) => stage.write(body.subarray(at, at + size), () => resolve()));
  }
  if (!stage.destroyed) stage.end();
  return { out: Buffer.concat(out), error: await done, redacted };
}

describe('GzipWatch', () => {
  it('passes a gzip file without a needle byte for byte, in pieces of any size', async () => {
    const file = gzipSync(Buffer.from('nothing secret here\n'.repeat(2000)));
    for (const size of [1, 7, 4096]) {
      const { out, error } = await watch(file, size);
      expect(error).toBeUndefined();
      expect(out.equals(file)).toBe(true);
    }
  });

  it('stops before the bytes that complete a needle: what left decodes to no piece of it', async () => {
    const text = Buffer.from(`${'x'.repeat(5000)} token=${SECRET} ${'y'.repeat(5000)}`);
    const file = gzipSync(text, { level: 0 }); // stored: the needle's bytes are in the file as they are
    for (const size of [1, 3, 64, 100_000]) {
      const { out, error, redacted } = await watch(file, size);
      expect(error?.message, `pieces of ${size}`).toMatch(/gzip file/);
      expect(redacted).toBeGreaterThan(0);
      const decoded = out.length > 10 ? gunzipSync(out, { finishFlush: constants.Z_SYNC_FLUSH }).toString('latin1') : '';
      expect(decoded.includes(SECRET.slice(0, 6)), `pieces of ${size}: a start of the secret left`).toBe(false);
      expect(out.includes(Buffer.from(SECRET.slice(0, 6)))).toBe(false);
    }
  });

  it('leaves a body that is no gzip file alone, and a whole one is checked the same way', async () => {
    const plain = Buffer.from(`\x1f not gzip ${SECRET}`);
    expect((await watch(plain, 5)).out.equals(plain)).toBe(true);
    expect(mayBeGzip(Buffer.from([0x1f]))).toBe(true);
    expect(mayBeGzip(Buffer.from([0x1f, 0x8b, 0x09]))).toBe(false);
    const noop = { needles, onRedacted: () => undefined };
    expect(() => checkWholeGzip(gzipSync(Buffer.from(`a ${SECRET} b`)), noop)).toThrow(/gzip file/);
    expect(() => checkWholeGzip(gzipSync(Buffer.from('clean')), noop)).not.toThrow();
    expect(() => checkWholeGzip(Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), noop)).toThrow(/does not decode/);
  });
});
