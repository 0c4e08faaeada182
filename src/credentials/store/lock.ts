// The inter-process lock around a store write. proper-lockfile makes `<store>.lock` with mkdir (atomic
// on every filesystem we care about) and keeps its mtime fresh while held, so a lock left by a crashed
// process goes stale and is taken over instead of blocking the store forever.

import lockfile from 'proper-lockfile';
import { KeywayError } from '../../errors/index.ts';

// A holder refreshes its lock every STALE_MS / 2; one not refreshed for STALE_MS is presumed dead.
const STALE_MS = 5_000;
// Waiting is about 7 s in all: longer than STALE_MS, so a dead holder's lock is taken over before we give
// up, and short enough that a CLI command stuck behind a hung process fails with a clear message.
const RETRIES = { retries: 35, factor: 1.3, minTimeout: 20, maxTimeout: 250 } as const;

export interface HeldLock {
  /** Throws store_locked if the lock was lost (another process took it over as stale) while held. */
  assertHeld(): void;
}

export async function withStoreLock<R>(path: string, fn: (lock: HeldLock) => Promise<R>): Promise<R> {
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path, {
      stale: STALE_MS,
      retries: RETRIES,
      // The store file may not exist yet (Store.open creates it under this lock).
      realpath: false,
      // The default throws from a timer and kills the process; record it and refuse to commit instead.
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ELOCKED'
        ? `another keyway process holds ${path}.lock; if none is running, remove that directory`
        : `could not lock it (${code ?? 'error'})`;
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
    await release().catch(() => undefined);
  }
}
