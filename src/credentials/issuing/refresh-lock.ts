import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireFileLock, type ReleaseFileLock } from '../../files/file-lock.ts';

/** Gives the lock back; never throws (a lock already lost has nothing left to give back). */
export type ReleaseRefreshLock = ReleaseFileLock;

// The holder keeps the lock across one token call (at most the token timeout), refreshing it every
// STALE_MS / 2; a holder that died is taken over after STALE_MS.
const STALE_MS = 10_000;

/** One refresh per grant across every keyway process on this home: a lock file per grant. */
export async function acquireRefreshLock(lockDir: string, grantId: string, waitMs: number): Promise<ReleaseRefreshLock> {
  await mkdir(lockDir, { recursive: true, mode: 0o700 });
  return acquireFileLock(join(lockDir, `refresh-${grantId}`), { staleMs: STALE_MS, waitMs });
}
