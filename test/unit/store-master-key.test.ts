import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeywayError } from '../../src/errors/index.ts';
import { loadMasterKey } from '../../src/credentials/store/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-mk-'));
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

describe('loadMasterKey', () => {
  it('takes KEYWAY_MASTER_KEY first, even when a key file is also named', async () => {
    const key = randomBytes(32);
    const other = join(dir, 'other.key');
    await writeFile(other, randomBytes(32));
    const got = await loadMasterKey({
      dataDir: join(dir, 'data'),
      env: { KEYWAY_MASTER_KEY: key.toString('base64'), KEYWAY_MASTER_KEY_FILE: other },
    });
    expect(got.source).toBe('env');
    expect(got.key.equals(key)).toBe(true);
    await expect(stat(join(dir, 'data'))).rejects.toThrow(); // nothing generated
  });

  it('rejects a KEYWAY_MASTER_KEY of the wrong length or alphabet without printing it', async () => {
    for (const bad of [
      randomBytes(16).toString('base64'),
      randomBytes(33).toString('base64'),
      'not base64 at all but long enough to be mistaken for a key!!',
      ' ',
    ]) {
      const err = await rejection(loadMasterKey({ dataDir: dir, env: { KEYWAY_MASTER_KEY: bad } }));
      expect(err.code).toBe('master_key_invalid');
      expect(err.message).toContain('KEYWAY_MASTER_KEY');
      expect(err.message).toContain('32 bytes');
      if (bad.trim() !== '') expect(err.message).not.toContain(bad);
    }
  });

  it('reads KEYWAY_MASTER_KEY_FILE as base64 text or as 32 raw bytes', async () => {
    const key = randomBytes(32);
    const b64 = join(dir, 'b64.key');
    const raw = join(dir, 'raw.key');
    await writeFile(b64, `${key.toString('base64')}\n`);
    await writeFile(raw, key);
    for (const file of [b64, raw]) {
      const got = await loadMasterKey({ dataDir: dir, env: { KEYWAY_MASTER_KEY_FILE: file } });
      expect(got.source).toBe('file');
      expect(got.key.equals(key)).toBe(true);
    }
  });

  it('rejects a bad or missing key file, naming the file but not its contents', async () => {
    const secret = randomBytes(20).toString('base64');
    const file = join(dir, 'bad.key');
    await writeFile(file, secret);
    let err = await rejection(loadMasterKey({ dataDir: dir, env: { KEYWAY_MASTER_KEY_FILE: file } }));
    expect(err.code).toBe('master_key_invalid');
    expect(err.message).toContain(file);
    expect(err.message).not.toContain(secret);

    err = await rejection(loadMasterKey({ dataDir: dir, env: { KEYWAY_MASTER_KEY_FILE: join(dir, 'nope') } }));
    expect(err.code).toBe('master_key_invalid');
    expect(err.message).toContain('ENOENT');
  });

  it('generates dataDir/master.key once, mode 0600, and reuses it', async () => {
    const dataDir = join(dir, 'data');
    const first = await loadMasterKey({ dataDir, env: {} });
    expect(first.source).toBe('generated');
    expect(first.key.length).toBe(32);
    const path = join(dataDir, 'master.key');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, 'utf8')).trim()).toBe(first.key.toString('base64'));

    const second = await loadMasterKey({ dataDir, env: {} });
    expect(second.source).toBe('existing');
    expect(second.key.equals(first.key)).toBe(true);
  });

  it('makes exactly one key when several callers start at once', async () => {
    const dataDir = join(dir, 'data');
    const all = await Promise.all(Array.from({ length: 8 }, () => loadMasterKey({ dataDir, env: {} })));
    expect(all.filter((k) => k.source === 'generated')).toHaveLength(1);
    for (const k of all) expect(k.key.equals(all[0]!.key)).toBe(true);
  });

  it('rejects a damaged master.key instead of replacing it', async () => {
    const path = join(dir, 'master.key');
    const junk = 'x'.repeat(50);
    await writeFile(path, junk);
    const err = await rejection(loadMasterKey({ dataDir: dir, env: {} }));
    expect(err.code).toBe('master_key_invalid');
    expect(err.message).not.toContain(junk);
    expect(await readFile(path, 'utf8')).toBe(junk);
  });
});
