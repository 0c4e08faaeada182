import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';

/**
 * One refresh per grant across every keyway process on this home: a lock file per grant. The
 * holder keeps it fresh; a holder that died is taken over after `staleMs`.
 */
export async function withRefreshLock<T>(lockDir: string, grantId: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  await mkdir(lockDir, { recursive: true, mode: 0o700 });
  const target = join(lockDir, `refresh-${grantId}`);
  const staleMs = 10_000;
  const started = Date.now();
  let release: (() => Promise<void>) | undefined;
  while (!release) {
    try {
      release = await lockfile.lock(target, { realpath: false, stale: staleMs, update: staleMs / 2, retries: 0, onCompromised: () => undefined });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() - started > waitMs) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25 + Math.random() * 50));
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
