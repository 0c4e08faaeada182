// Who holds a file lock (file-lock.ts, `recordHolder`), so that a waiter can tell a dead holder from
// a slow one without waiting out the stale timer (issue 60: a killed `key rotate` held the key lock
// for 30 s). The holder writes holder.json inside its lock directory: host, boot id, pid and the
// process's start time (Linux /proc). A waiter judges the holder gone only when it can be sure: same
// host and boot, and no process of that pid, or one started at another time (the pid reused); or the
// same host booted since. Anything else (another host sharing the folder, no /proc, a lock without
// a holder file yet) is presumed alive, and the stale timer decides as before.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

const HOLDER_FILE = 'holder.json';

export interface LockHolder {
  host: string;
  /** /proc/sys/kernel/random/boot_id; '' where there is none. */
  boot: string;
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22); '' where unknown. */
  start: string;
  /** Tells two holds of the same process apart. */
  nonce: string;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses, so count from its closing one. */
function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** This process as a holder (a lock's, an owed audit line's: credentials/store/change-rider.ts, a spend journal's). */
export function thisHolder(): LockHolder {
  return { host: hostname(), boot: bootId(), pid: process.pid, start: startTimeOf(process.pid) ?? '', nonce: randomBytes(8).toString('hex') };
}

/** Whether the holder is certainly gone (see the top of this file); false whenever in doubt. */
export function holderGone(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false;
  const boot = bootId();
  if (boot === '' || holder.boot === '') return false;
  if (holder.boot !== boot) return true;
  if (holder.pid === process.pid) return false;
  if (!alive(holder.pid)) return true;
  const start = startTimeOf(holder.pid);
  return holder.start !== '' && start !== undefined && start !== holder.start;
}

/**
 * Written by the holder right after it made the lock directory (a temporary name, then a rename:
 * read whole or not at all). proper-lockfile keeps the directory's mtime as its own and reads any
 * other as its lock taken over (compromised, no longer refreshed): the mtime is put back.
 */
export async function writeHolder(lockDir: string): Promise<void> {
  const { mtime } = await stat(lockDir);
  const temp = join(lockDir, `.${HOLDER_FILE}.${randomBytes(4).toString('hex')}`);
  await writeFile(temp, JSON.stringify(thisHolder()), { mode: 0o600 });
  await rename(temp, join(lockDir, HOLDER_FILE));
  await utimes(lockDir, mtime, mtime);
}

/** The holder file's text as it is (compared whole under the takeover mutex), or undefined. */
export async function readHolderText(lockDir: string): Promise<string | undefined> {
  return readFile(join(lockDir, HOLDER_FILE), 'utf8').catch(() => undefined);
}

export function parseHolder(text: string | undefined): LockHolder | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    const ok =
      typeof parsed.host === 'string' &&
      typeof parsed.boot === 'string' &&
      Number.isSafeInteger(parsed.pid) &&
      (parsed.pid as number) > 0 &&
      typeof parsed.start === 'string';
    return ok ? (parsed as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

export function holderPath(lockDir: string): string {
  return join(lockDir, HOLDER_FILE);
}
