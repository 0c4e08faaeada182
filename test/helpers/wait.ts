import { slack } from './load.ts';

/**
 * Polls `find` every 25 ms until it returns something (e.g. for an audit line, written as a response
 * ends). A wait on an event: it ends when the event comes, and `timeoutMs` (5 s on an idle machine)
 * is only how long to wait for one that never comes, stretched by the measured load (load.ts).
 */
export async function waitFor<T>(find: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + slack(timeoutMs);
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** waitFor for a check that must await (a request, a command): polls until it resolves to something. */
export async function waitForAsync<T>(find: () => Promise<T | undefined>, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + slack(timeoutMs);
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
