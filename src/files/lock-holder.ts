// Who holds a file lock (file-lock.ts, `recordHolder`), so that a waiter can tell a dead holder from
// a slow one without waiting out the stale timer (issue 60: a killed `key rotate` held the key lock
// for 30 s). The record: host, boot id, pid and the process's start time (Linux /proc). It is the
// lock file's content (holder-lock.ts), or, as an older keyway made its locks, holder.json inside a
// lock directory. A holder is certainly gone when on the same host and boot there is no process of
// that pid, or one started at another time (the pid reused), or the host booted since; certainly
// alive when on the same host and boot its pid runs with the start time recorded. Anything else
// (another host sharing the folder, no /proc) cannot be judged: lock-judge.ts lets the stale timer
// decide then.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
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
  if (!alive(holder.pid)) return true;
  const start = startTimeOf(holder.pid);
  return holder.start !== '' && start !== undefined && start !== holder.start;
}

/** Whether the holder is certainly running: on this host and boot, its pid started when the record says (this process included). */
export function holderAlive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false;
  const boot = bootId();
  if (boot === '' || holder.boot !== boot) return false;
  if (!alive(holder.pid)) return false;
  const start = startTimeOf(holder.pid);
  return holder.start !== '' && start === holder.start;
}

/**
 * The holder record of the lock at `lockPath` as it is (compared whole before a stale lock is
 * cleared), or undefined: the lock file's text, or an older keyway's lock directory's holder.json.
 */
export async function readHolderText(lockPath: string): Promise<string | undefined> {
  const st = await lstat(lockPath).catch(() => undefined);
  if (st === undefined) return undefined;
  return readFile(st.isDirectory() ? holderPath(lockPath) : lockPath, 'utf8').catch(() => undefined);
}

export function parseHolder(text: string | undefined): LockHolder | undefined {
  if (text === undefined) return undefined;
  try {
    return asHolder(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** A parsed value as a holder record, or undefined when it is not one. */
export function asHolder(value: unknown): LockHolder | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const parsed = value as Partial<LockHolder>;
  const ok =
    typeof parsed.host === 'string' &&
    typeof parsed.boot === 'string' &&
    Number.isSafeInteger(parsed.pid) &&
    (parsed.pid as number) > 0 &&
    typeof parsed.start === 'string';
  return ok ? (parsed as LockHolder) : undefined;
}

export function holderPath(lockDir: string): string {
  return join(lockDir, HOLDER_FILE);
}
