import { mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireFileLock } from '../../src/files/file-lock.ts';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function target(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-lock-'));
  dirs.push(dir);
  return join(dir, 'thing');
}

describe('acquireFileLock (the one lock and retry policy for store, audit and refresh)', () => {
  it('a waiter gets the lock soon after the holder lets go', async () => {
    const path = await target();
    const release = await acquireFileLock(path, { staleMs: 5_000, waitMs: 5_000 });
    let releasedAt = Number.POSITIVE_INFINITY;
    const waiting = acquireFileLock(path, { staleMs: 5_000, waitMs: 10_000 });
    setTimeout(() => {
      releasedAt = Date.now();
      void release();
    }, 200);
    const second = await waiting;
    const acquiredAt = Date.now();
    // Not before the holder let go; well within the wait (short polls; generous bound for a loaded machine).
    expect(acquiredAt).toBeGreaterThanOrEqual(releasedAt);
    expect(acquiredAt - releasedAt).toBeLessThan(3_000);
    await second();
  });

  it('gives up with ELOCKED after waitMs while a live holder keeps it', async () => {
    const path = await target();
    const release = await acquireFileLock(path, { staleMs: 5_000, waitMs: 0 });
    const started = Date.now();
    await expect(acquireFileLock(path, { staleMs: 5_000, waitMs: 300 })).rejects.toMatchObject({ code: 'ELOCKED' });
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(300);
    expect(waited).toBeLessThan(2_000);
    await release();
  });

  it('takes over a lock left by a dead holder once it is stale', async () => {
    const path = await target();
    await mkdir(`${path}.lock`); // what a crashed process leaves behind
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    const release = await acquireFileLock(path, { staleMs: 2_000, waitMs: 0 });
    await release();
  });

  it('release never throws, even when the lock was already taken away', async () => {
    const path = await target();
    const release = await acquireFileLock(path, { staleMs: 2_000, waitMs: 0 });
    await rm(`${path}.lock`, { recursive: true });
    await expect(release()).resolves.toBeUndefined();
  });
});
