// The one inter-process file lock: the store, the audit log and each grant's token refresh are
// locked through here. proper-lockfile makes `<path>.lock` with mkdir (atomic on every filesystem
// we care about) and keeps its mtime fresh while held, so a lock left by a crashed process goes
// stale and is taken over instead of blocking everyone forever.
//
// One retry policy for every caller: try, and while another process holds the lock, try again
// after a short, jittered pause (1 ms growing to 4 ms, times 1 to 2) until `waitMs` has passed.
// Why short: proper-lockfile has no queue of waiters, so a waiter gets the lock only by trying
// during a gap between two holds. The audit writer leaves a 10 ms gap between batches
// (audit/file/writer.ts LOCK_GAP_MS); a pause longer than that can miss every gap and starve. Why
// jittered: processes that wait together do not retry in lockstep. Why it is cheap anyway: a
// failed try is one mkdir, so even the longest wait (a token refresh, about 15 s) costs little.
// The callers differ only in what they say in options:
// - store (credentials/store/lock.ts): stale 5 s, waits 7 s, longer than stale, so a dead holder's
//   lock is taken over before giving up; a lock lost while held refuses to commit. It records its
//   holder (below), so a writer on this host killed holding it is taken over at once.
// - audit log (audit/file/log-files.ts): stale 5 s, waits 7 s (a batch holds it for one append,
//   but a writer that died holding it, such as a killed worker, must not fail the others' batches);
//   a lost lock forgets the cached chain head.
// - token refresh (credentials/issuing/refresh-lock.ts): stale 10 s, waits the token timeout
//   plus 5 s, since the holder keeps it across one call to the token endpoint.
// - master key (credentials/store/lock.ts withKeyLock, held across a whole rotation): stale 30 s,
//   waits 3 s, and records its holder, so a lock whose holder on this host was killed is taken over
//   at once; a holder on another host sharing the folder still goes stale.
// A lock that records its holder (`recordHolder`) is a file made whole with the holder's record
// (holder-lock.ts) instead of proper-lockfile's directory; lock-judge.ts writes down which such
// locks are live, and every other one is cleared by the next process that wants it, at once.
// Before, the three had their own policies (store: backoff 20-250 ms; refresh: 25-75 ms polls;
// audit: 1-8 ms polls); only the audit's was needed for fairness, and it serves the others too.

import { rm } from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import { holderLockFs, sweepLockTemps } from './holder-lock.ts';
import { judgeLock } from './lock-judge.ts';
import { thisHolder } from './lock-holder.ts';

export interface FileLockOptions {
  /** A holder that has not refreshed its lock for this long is presumed dead (proper-lockfile's minimum is 2 s). */
  staleMs: number;
  /** Give up after waiting this long, with proper-lockfile's ELOCKED error. */
  waitMs: number;
  /** The lock was lost while held (this process stalled past staleMs and another took it over). */
  onCompromised?: ((err: Error) => void) | undefined;
  /**
   * Record who holds it (lock-holder.ts), and clear at once a lock lock-judge.ts finds stale (its
   * holder on this host gone, killed), instead of after staleMs; one whose holder is alive never.
   */
  recordHolder?: boolean | undefined;
  /** Hears each stale lock this process cleared, why in a few words (`from PID 4242, which is no longer running`). */
  onStaleCleared?: ((why: string) => void) | undefined;
}

/** Gives the lock back; never throws (a lock already lost has nothing left to give back). */
export type ReleaseFileLock = () => Promise<void>;

const FIRST_PAUSE_MS = 1;
const LAST_PAUSE_MS = 4;
const GROWTH = 1.1;

export async function acquireFileLock(path: string, options: FileLockOptions): Promise<ReleaseFileLock> {
  const started = Date.now();
  const lockPath = `${path}.lock`;
  // One record for the whole wait: the lock file is this text, and only this text is removed as ours.
  const fs = options.recordHolder ? holderLockFs(JSON.stringify(thisHolder())) : undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(path, {
        stale: options.staleMs,
        retries: 0,
        // The file locked may not exist yet (the store is created under its lock).
        realpath: false,
        // The default throws from a timer and kills the process.
        onCompromised: options.onCompromised ?? (() => undefined),
        ...(fs === undefined ? {} : { fs }),
      });
      // What holders killed while making their lock left (holder-lock.ts): it locks nothing.
      if (fs !== undefined) await sweepLockTemps(lockPath, options.staleMs).catch(() => undefined);
      return () => release().catch(() => undefined);
    } catch (err) {
      let code = (err as NodeJS.ErrnoException).code;
      if (options.recordHolder && (code === 'ELOCKED' || code === 'ENOTEMPTY')) {
        // ENOTEMPTY: proper-lockfile found it stale by its age and left it to us (holder-lock.ts).
        if (await clearStaleLock(path, lockPath, options)) continue;
        code = 'ELOCKED';
        if (Date.now() - started >= options.waitMs) throw Object.assign(new Error('Lock file is already being held'), { code, file: path });
      }
      if (code !== 'ELOCKED' || Date.now() - started >= options.waitMs) throw err;
      const pause = Math.min(LAST_PAUSE_MS, FIRST_PAUSE_MS * GROWTH ** attempt) * (1 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * Removes a lock lock-judge.ts finds stale: true when it was removed (try again at once). Done under
 * a mutex of its own (`<path>.takeover`), and only if the lock is still exactly the one judged: two
 * waiters never both remove a lock, nor one remove a lock another just made.
 */
async function clearStaleLock(path: string, lockPath: string, options: FileLockOptions): Promise<boolean> {
  const judged = await judgeLock(lockPath, options.staleMs);
  if (judged === undefined) return true; // released meanwhile
  if (!judged.stale) return false;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(`${path}.takeover`, { stale: 2_000, retries: 0, realpath: false, onCompromised: () => undefined });
  } catch {
    return false; // another waiter is taking it over: wait as usual
  }
  try {
    const now = await judgeLock(lockPath, options.staleMs);
    if (now === undefined) return true;
    if (now.seen !== judged.seen || !now.stale) return false;
    await rm(lockPath, { recursive: true, force: true });
    options.onStaleCleared?.(now.why);
    return true;
  } finally {
    await release().catch(() => undefined);
  }
}
