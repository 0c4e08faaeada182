import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeywayError } from '../../src/errors/index.ts';
import { Store } from '../../src/credentials/store/index.ts';

// Changes to the store file that used to open without complaint: each one below is a single
// flipped bit (or a crash leftover) that the store must notice.

let dir: string;
let path: string;
const key = randomBytes(32);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-store-tamper-'));
  path = join(dir, 'store.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openError(): Promise<KeywayError | undefined> {
  return Store.open(path, key).then(
    () => undefined,
    (e: unknown) => {
      expect(e).toBeInstanceOf(KeywayError);
      return e as KeywayError;
    },
  );
}

function flipBit(text: string, at: number, bit: number): string {
  const bytes = Buffer.from(text, 'utf8');
  bytes[at] = bytes[at]! ^ (1 << bit);
  return bytes.toString('latin1');
}

describe('store tamper detection', () => {
  it('a flipped bit that turns one record id into another (a duplicate JSON key) is refused, not a silently dropped record', async () => {
    const store = await Store.open(path, key);
    // "x0" and "x1" differ in one bit; JSON.parse keeps the last of two equal keys, so turning the
    // first into the second used to drop "x0" and open cleanly.
    await store.update((d) => {
      d.set('x0', 'zero');
      d.set('x1', 'one');
    });
    const text = await readFile(path, 'utf8');
    const at = Buffer.from(text).indexOf('"x0"') + 2;
    await writeFile(path, Buffer.from(flipBit(text, at, 0), 'latin1'));
    expect((await readFile(path, 'utf8')).match(/"x1"/g)).toHaveLength(2);

    const err = await openError();
    expect(err?.code).toBe('store_corrupt');
  });

  it('a flipped bit in the unused low bits of a base64 tag (same decoded bytes) is refused', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', 'value'));
    const text = await readFile(path, 'utf8');
    const doc = JSON.parse(text) as { records: Record<string, { t: string }> };
    const tag = doc.records['a']!.t; // 16 bytes: 22 data characters and "==", 4 unused bits in the last
    const last = tag[21]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!; // differs only in an unused bit
    const forged = tag.slice(0, 21) + twin + tag.slice(22);
    expect(Buffer.from(forged, 'base64').equals(Buffer.from(tag, 'base64'))).toBe(true);
    await writeFile(path, text.replace(tag, forged));

    const err = await openError();
    expect(err?.code).toBe('store_corrupt');
  });

  it('a change that parses to the same content (re-indented, reordered) is refused: the file is exactly what keyway writes', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => {
      d.set('a', 1);
      d.set('b', 2);
    });
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify(doc));
    expect((await openError())?.code).toBe('store_corrupt');
  });

  it('a damaged check record is reported as damage, not as a wrong key, when the records still open', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', 'value'));
    const text = await readFile(path, 'utf8');
    const doc = JSON.parse(text) as { check: { c: string } };
    const c = doc.check.c;
    const changed = (c[0] === 'A' ? 'B' : 'A') + c.slice(1);
    await writeFile(path, text.replace(`"c": "${c}"`, `"c": "${changed}"`));

    const err = await openError();
    expect(err?.code).toBe('store_corrupt');
    expect(err?.message).toContain('check');
    // A store really opened with another key is still told apart.
    await writeFile(path, text);
    const other = await Store.open(path, randomBytes(32)).catch((e: unknown) => e as KeywayError);
    expect((other as KeywayError).code).toBe('store_wrong_key');
  });

  it('temporary files a killed writer left beside the store are removed once they are old, and young ones are kept', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', 1));
    const old = join(dir, `.store.json.999999.${randomBytes(6).toString('hex')}.tmp`);
    const young = join(dir, `.store.json.999998.${randomBytes(6).toString('hex')}.tmp`);
    const unrelated = join(dir, '.other.json.999999.abcdefabcdef.tmp');
    for (const f of [old, young, unrelated]) await writeFile(f, '{"half": ');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(old, hourAgo, hourAgo);
    await utimes(unrelated, hourAgo, hourAgo);

    const again = await Store.open(path, key);
    expect(again.get('a')).toBe(1);
    const left = await readdir(dir);
    expect(left).not.toContain(old.slice(dir.length + 1));
    expect(left).toContain(young.slice(dir.length + 1));
    expect(left).toContain(unrelated.slice(dir.length + 1));
  });
});
