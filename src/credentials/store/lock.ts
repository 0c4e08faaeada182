// The inter-process lock around a store write (`<store>.lock`), and the key lock around a key change
// (`data/locks/master-key.lock`); files/file-lock.ts says how they work.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KeywayError } from '../../errors/index.ts';
import { acquireFileLock, type ReleaseFileLock } from '../../files/file-lock.ts';

// A holder refreshes its lock every STALE_MS / 2; one not refreshed for STALE_MS is presumed dead.
const STALE_MS = 5_000;
// Waiting is about 7 s in all: longer than STALE_MS, so a dead holder's lock is taken over before we give
// up, and short enough that a CLI command stuck behind a hung process fails with a clear message.
const WAIT_MS = 7_000;

export interface HeldLock {
  /** Throws store_locked if the lock was lost (another process took it over as stale) while held. */
  assertHeld(): void;
}

export async function withStoreLock<R>(path: string, fn: (lock: HeldLock) => Promise<R>): Promise<R> {
  let compromised: Error | undefined;
  let release: ReleaseFileLock;
  try {
    release = await acquireFileLock(path, {
      staleMs: STALE_MS,
      waitMs: WAIT_MS,
      // A writer killed holding it (a command, a rotation sealing the store again) is taken over at
      // once when it was on this host, not STALE_MS later.
      recordHolder: true,
      // Record it and refuse to commit (assertHeld) instead.
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ELOCKED' ? `another keyway process holds ${path}.lock; if none is running, remove it` : `could not lock it (${code ?? 'error'})`;
    throw new KeywayError('store_locked', `the store ${path} is locked: ${why}`, { cause: err });
  }
  const lock: HeldLock = {
    assertHeld() {
      if (compromised !== undefined) {
        throw new KeywayError('store_locked', `lost the lock on ${path} while writing; nothing was written`, {
          cause: compromised,
        });
      }
    },
  };
  try {
    return await fn(lock);
  } finally {
    // A failed release (the lock was already lost) leaves nothing for us to undo; the lock directory,
    // if any, goes stale on its own.
    await release();
  }
}

// The key lock is held across a whole rotation (every record sealed again). It records its holder
// (files/lock-judge.ts says which locks are live): a holder alive on this host is never taken over; one
// gone (killed at any point, while making its lock included) is cleared at once; one on another host
// sharing the folder once it has gone 30 s without a refresh.
const KEY_STALE_MS = 30_000;
// A second key command does not queue behind a rotation: it waits a little, then says why it stops.
// A little more than the 2 s a command killed while clearing a stale lock leaves its takeover mutex
// for (file-lock.ts), so that kill does not refuse the next command.
const KEY_WAIT_MS = 3_000;

/**
 * One key change at a time on a home (rotate, rewrap): two at once could promote one's key over the
 * store the other sealed, and no key would open it. Held across every step, released on any end.
 * `say` hears a line for each stale lock cleared (a key command killed holding it).
 */
export async function withKeyLock<T>(dataDir: string, say: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  const dir = join(dataDir, 'locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'master-key');
  let release: ReleaseFileLock;
  try {
    release = await acquireFileLock(path, {
      staleMs: KEY_STALE_MS,
      waitMs: KEY_WAIT_MS,
      recordHolder: true,
      onStaleCleared: (why) => say(`keyway: cleared a stale key lock (${path}.lock) ${why}`),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ELOCKED') throw new KeywayError('store_locked', `key: could not lock ${dir}/master-key (${code ?? 'error'})`, { cause: err });
    throw new KeywayError('usage', 'key: another key rotate or rewrap is running on this home; run this one once it has ended');
  }
  try {
    return await fn();
  } finally {
    await release();
  }
}
