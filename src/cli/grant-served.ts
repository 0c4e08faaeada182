// Waiting until the keyways running for a home serve a grant the command line just stored. A running
// keyway reads the store every 250 ms (app/store-watch.ts); a login run before it has read the new
// login_capture grant would pass it unwatched, and the agent would keep the real tokens. So
// `keyway connect AGENT --login` asks each running keyway's admin API for the grant before it starts
// the login, and then waits one more store read for the workers, which read the store each on their own.

import { readAdminToken } from '../admin/token.ts';
import { runningProxyFiles } from '../paths.ts';
import { callAdmin, lookUpProxies } from './running-status.ts';

/** How often the store is re-read by every keyway process (app/store-watch.ts), with a margin. */
const STORE_READ_MS = 300;
const POLL_MS = 50;

/**
 * Resolves once every running keyway of `home` that has an admin API lists `grantId`, and a store
 * read more has passed; a keyway without an admin API is given two store reads. Returns the pids
 * that did not list it within `timeoutMs` (empty: all serve it).
 */
export async function waitUntilServed(home: string, grantId: string, env: NodeJS.ProcessEnv, timeoutMs = 5_000): Promise<number[]> {
  const { running } = await lookUpProxies(home, env);
  const withAdmin = running.filter((found) => found.proxy.admin !== null && found.live !== undefined);
  const token = withAdmin.length === 0 ? undefined : await readAdminToken(runningProxyFiles(home).adminToken, env);
  const late: number[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const found of withAdmin) {
    let served = false;
    while (!served && Date.now() < deadline) {
      const answer = await callAdmin(found.proxy.admin!, token!, 'GET', `/api/grants/${encodeURIComponent(grantId)}`).catch(() => undefined);
      served = answer?.status === 200;
      if (!served) await sleep(POLL_MS);
    }
    if (!served) late.push(found.proxy.pid);
  }
  await sleep(withAdmin.length === running.length ? STORE_READ_MS : 2 * STORE_READ_MS);
  return late;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
