// The inter-process lock around a store write (`<store>.lock`; files/file-lock.ts says how it works).

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
      // Record it and refuse to commit (assertHeld) instead.
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ELOCKED' ? `another keyway process holds ${path}.lock; if none is running, remove that directory` : `could not lock it (${code ?? 'error'})`;
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
