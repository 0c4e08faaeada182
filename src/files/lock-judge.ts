// Whether a lock that records its holder (file-lock.ts `recordHolder`) is live or stale (issue 86).
// Written down here, the states a lock is live in; every other state is stale, and the next process
// that wants the lock clears it (file-lock.ts, under a mutex, once it finds the lock as judged).
//
// Live:
//  1. A holder record (lock-holder.ts) whose process is certainly alive: on this host and boot, its
//     pid running with the start time recorded. Never cleared, however long since it was refreshed:
//     a holder paused or stalled still holds it.
//  2. A holder record that cannot be judged (its host is another sharing the folder; no /proc)
//     refreshed within staleMs: presumed alive until then, as proper-lockfile presumes.
//  3. An older keyway's lock (a directory, its holder.json renamed in after the mkdir) with its
//     record half-written, touched within MAKING_MS: being made now.
//  4. A lock that says nothing of its holder (an empty directory: made by proper-lockfile for a
//     holder that records none) refreshed within staleMs, as proper-lockfile presumes. This keyway's
//     locks are never without a whole record (holder-lock.ts); an older keyway's only while making one.
// The record is the lock file's text; in an older keyway's directory, holder.json, else the
// temporary file it was being renamed in from (`.holder.json.*`), when that was written whole.
// Stale, everything else: a record whose process is gone (killed, the pid reused, a boot since), an
// unjudged record or a silent lock not refreshed for staleMs, a record half-written MAKING_MS ago.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { holderAlive, holderGone, holderPath, type LockHolder, parseHolder } from './lock-holder.ts';

/** How long a half-written record may be one being written (3.), not one left by a holder killed writing it. */
const MAKING_MS = 1_000;

export interface LockVerdict {
  stale: boolean;
  /** What was judged: the lock is cleared only if it is still exactly this (file-lock.ts). */
  seen: string;
  /** Why it is stale, for the line that says it was cleared: `from PID 4242, which is no longer running`. */
  why: string;
}

/** The lock at `lockPath` judged; undefined when there is none. */
export async function judgeLock(lockPath: string, staleMs: number): Promise<LockVerdict | undefined> {
  const st = await lstat(lockPath).catch(() => undefined);
  if (st === undefined) return undefined;
  const texts = st.isDirectory() ? await olderRecords(lockPath) : [await readFile(lockPath, 'utf8').catch(() => '')];
  const seen = `${st.isDirectory() ? 'directory' : 'file'}\n${texts.join('\n')}`;
  const holder = texts.map(parseHolder).find((h): h is LockHolder => h !== undefined);
  const quiet = Date.now() - st.mtimeMs;
  if (holder === undefined && texts.length === 0) {
    if (quiet <= staleMs) return { stale: false, seen, why: 'held by a process that records none' };
    return { stale: true, seen, why: `of a process that recorded none, not refreshed for ${Math.round(quiet / 1000)} s` };
  }
  if (holder === undefined) {
    // ctime, not mtime: proper-lockfile may set a lock's mtime up to a second ahead.
    if (Date.now() - st.ctimeMs <= MAKING_MS) return { stale: false, seen, why: 'being made' };
    const pid = texts.map((t) => /"pid":(\d+)/.exec(t)?.[1]).find((p) => p !== undefined);
    return { stale: true, seen, why: `${pid === undefined ? 'of an unknown process' : `from PID ${pid}`}, its holder record half-written` };
  }
  if (holderAlive(holder)) return { stale: false, seen, why: `held by PID ${holder.pid}` };
  if (holderGone(holder)) return { stale: true, seen, why: `from PID ${holder.pid}, which is no longer running` };
  if (quiet <= staleMs) return { stale: false, seen, why: `held by PID ${holder.pid} on ${holder.host}` };
  return { stale: true, seen, why: `from PID ${holder.pid} on ${holder.host}, not refreshed for ${Math.round(quiet / 1000)} s` };
}

/** An older keyway's lock directory: holder.json, else the temporary files it was written to first. */
async function olderRecords(lockDir: string): Promise<string[]> {
  const holder = await readFile(holderPath(lockDir), 'utf8').catch(() => undefined);
  if (holder !== undefined) return [holder];
  const names = (await readdir(lockDir).catch(() => [] as string[])).filter((n) => n.startsWith('.holder.json.')).sort();
  return Promise.all(names.map((n) => readFile(join(lockDir, n), 'utf8').catch(() => '')));
}
