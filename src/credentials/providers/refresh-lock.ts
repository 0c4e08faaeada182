import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';

/** Gives the lock back; never throws (a lock already lost has nothing left to give back). */
export type ReleaseRefreshLock = () => Promise<void>;

/**
 * One refresh per grant across every keyway process on this home: a lock file per grant. The
 * holder keeps it fresh; a holder that died is taken over after `staleMs`.
 */
export async function acquireRefreshLock(lockDir: string, grantId: string, waitMs: number): Promise<ReleaseRefreshLock> {
  await mkdir(lockDir, { recursive: true, mode: 0o700 });
  const target = join(lockDir, `refresh-${grantId}`);
  const staleMs = 10_000;
  const started = Date.now();
  for (;;) {
    try {
      const release = await lockfile.lock(target, { realpath: false, stale: staleMs, update: staleMs / 2, retries: 0, onCompromised: () => undefined });
      return () => release().catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() - started > waitMs) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25 + Math.random() * 50));
    }
  }
}

export async function withRefreshLock<T>(lockDir: string, grantId: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const release = await acquireRefreshLock(lockDir, grantId, waitMs);
  try {
    return await fn();
  } finally {
    await release();
  }
}
