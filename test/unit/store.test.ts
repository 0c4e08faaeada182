import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeywayError } from '../../src/errors/index.ts';
import { Store } from '../../src/credentials/store/index.ts';

let dir: string;
let path: string;
const key = randomBytes(32);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-store-'));
  path = join(dir, 'data', 'store.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<KeywayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeywayError);
  return err as KeywayError;
}

interface Sealed {
  n: string;
  c: string;
  t: string;
}
async function readDoc(): Promise<{ check: Sealed; records: Record<string, Sealed> }> {
  return JSON.parse(await readFile(path, 'utf8')) as { check: Sealed; records: Record<string, Sealed> };
}

describe('Store', () => {
  it('round-trips values through the file and a fresh instance', async () => {
    const store = await Store.open(path, key);
    expect(store.get('secret:a')).toBeUndefined();
    const result = await store.update((d) => {
      d.set('secret:a', { value: 'alpha', n: 1 });
      d.set('secret:b', ['x', null, true]);
      d.set('grant:z', 'zed');
      return d.entries('secret:').length;
    });
    expect(result).toBe(2);
    expect(store.get('secret:a')).toEqual({ value: 'alpha', n: 1 });
    expect(store.entries('secret:').map(([id]) => id)).toEqual(['secret:a', 'secret:b']);

    const again = await Store.open(path, key);
    expect(again.get('secret:b')).toEqual(['x', null, true]);
    expect(again.get('grant:z')).toBe('zed');

    const deleted = await again.update((d) => d.delete('secret:a'));
    expect(deleted).toBe(true);
    expect(again.get('secret:a')).toBeUndefined();
    expect((await Store.open(path, key)).entries('')).toHaveLength(2);
    await expect(stat(`${path}.lock`)).rejects.toThrow(); // the lock is released
  });

  it('writes the file with mode 0600 and the versioned format', async () => {
    const store = await Store.open(path, key);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await store.update((d) => d.set('a', 1));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(doc).toMatchObject({ format: 'keyway-store', version: 1, cipher: 'aes-256-gcm' });
  });

  it('seals with a fresh nonce on every write, keeps unchanged records, and stores no plaintext', async () => {
    const store = await Store.open(path, key);
    const canary = 'canary-plaintext-3f9a';
    await store.update((d) => {
      d.set('a', canary);
      d.set('b', 'other');
    });
    const first = await readDoc();
    await store.update((d) => d.set('a', 'interim'));
    await store.update((d) => d.set('a', canary));
    const third = await readDoc();

    expect(third.records.a!.n).not.toBe(first.records.a!.n);
    expect(third.records.a!.c).not.toBe(first.records.a!.c);
    // Only the changed record was re-sealed.
    expect(third.records.b).toEqual(first.records.b);
    expect(third.check).toEqual(first.check);

    const text = await readFile(path, 'utf8');
    expect(text).not.toContain(canary);
    expect(text).not.toContain(Buffer.from(JSON.stringify(canary)).toString('base64'));
    expect(text).not.toContain(Buffer.from(canary).toString('base64'));
  });

  it('skips the write when an update changes nothing', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', { x: 1 }));
    const before = await stat(path);
    const gen = store.generation;
    await store.update((d) => {
      d.set('a', { x: 1 });
      d.get('a');
    });
    const after = await stat(path);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(store.generation).toBe(gen);
  });

  it('reports store_corrupt, naming the record, when two records swap ciphertexts', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => {
      d.set('secret:one', 'first');
      d.set('secret:two', 'second');
    });
    const doc = await readDoc();
    [doc.records['secret:one'], doc.records['secret:two']] = [doc.records['secret:two']!, doc.records['secret:one']!];
    await writeFile(path, JSON.stringify(doc));

    const err = await rejection(Store.open(path, key));
    expect(err.code).toBe('store_corrupt');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/secret:(one|two)/);
  });

  it('reports store_wrong_key for another key and leaves the file untouched', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', 'value'));
    const bytes = await readFile(path);

    const err = await rejection(Store.open(path, randomBytes(32)));
    expect(err.code).toBe('store_wrong_key');
    expect(err.message).toContain(path);
    expect(err.message).toContain('KEYWAY_MASTER_KEY');
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('reports store_corrupt for a truncated or garbage file, and update() refuses to write over it', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', 'value'));
    const good = await readFile(path);

    const damaged = [
      good.subarray(0, Math.floor(good.length / 2)),
      Buffer.from('garbage \u0000\u0001'),
      Buffer.from(''),
      Buffer.from(JSON.stringify({ format: 'keyway-store', version: 2 })),
      Buffer.from('[]'),
    ];
    for (const bytes of damaged) {
      await writeFile(path, bytes);
      const openErr = await rejection(Store.open(path, key));
      expect(openErr.code).toBe('store_corrupt');
      expect(openErr.message).toContain(path);

      let ran = false;
      const updateErr = await rejection(
        store.update((d) => {
          ran = true;
          d.set('b', 'new');
        }),
      );
      expect(updateErr.code).toBe('store_corrupt');
      expect(ran).toBe(false);
      expect((await readFile(path)).equals(bytes)).toBe(true);
      // The last good contents stay readable in memory.
      expect(store.get('a')).toBe('value');
    }
  });

  it('writes nothing when the update callback throws', async () => {
    const store = await Store.open(path, key);
    await store.update((d) => d.set('a', 1));
    const bytes = await readFile(path);
    await expect(
      store.update((d) => {
        d.set('a', 2);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect(store.get('a')).toBe(1);
  });

  it('hands out frozen values and rejects a draft kept past its update', async () => {
    const store = await Store.open(path, key);
    const input = { nested: { v: 1 } };
    let kept: { set(id: string, v: unknown): void } | undefined;
    await store.update((d) => {
      d.set('a', input);
      kept = d;
    });
    input.nested.v = 2; // the store copied the value
    const got = store.get<{ nested: { v: number } }>('a')!;
    expect(got.nested.v).toBe(1);
    expect(() => {
      got.nested.v = 3;
    }).toThrow(TypeError);
    expect(() => kept!.set('b', 1)).toThrow(/after its update/);
  });

  it('keeps a change made by another instance when updating from a stale one', async () => {
    const a = await Store.open(path, key);
    const b = await Store.open(path, key);
    await a.update((d) => d.set('from-a', 1));
    await b.update((d) => d.set('from-b', 2));
    const fresh = await Store.open(path, key);
    expect(fresh.entries('from-').map(([id]) => id)).toEqual(['from-a', 'from-b']);
    expect(b.get('from-a')).toBe(1);
  });

  it('serialises concurrent updates within one process', async () => {
    const store = await Store.open(path, key);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.update((d) => d.set(`k${i}`, i))));
    expect((await Store.open(path, key)).entries('k')).toHaveLength(20);
  });

  it('fails with store_locked, writing nothing, while another holder keeps the lock', async () => {
    const store = await Store.open(path, key);
    const bytes = await readFile(path);
    // A live holder: proper-lockfile keeps refreshing the lock, so it never looks stale.
    const release = await lockfile.lock(path, { realpath: false, stale: 5_000 });
    try {
      const err = await rejection(store.update((d) => d.set('a', 1)));
      expect(err.code).toBe('store_locked');
      expect(err.message).toContain(`${path}.lock`);
    } finally {
      await release();
    }
    expect((await readFile(path)).equals(bytes)).toBe(true);
    await store.update((d) => d.set('a', 1)); // and works once the holder is gone
    expect(store.get('a')).toBe(1);
  });
});
