// A lock that is made whole with its holder's record (file-lock.ts `recordHolder`, issue 86): the
// lock is a file, `<path>.lock`, holding the record (lock-holder.ts), put in place by link(2) from a
// temporary file already written. link never replaces a file, so the lock is taken by one process,
// and it is there with its record or not at all: no kill leaves a lock that does not say whose it
// is. (Before, the lock was a directory made first and its holder file renamed in after: a holder
// killed in between left a lock saying nothing, refused for 30 s.) A kill before the link leaves only
// the temporary file, which locks nothing and goes with the next holder's sweep (sweepLockTemps).
//
// proper-lockfile makes and removes its lock through the `fs` it is given: these are the calls it
// makes, mkdir for taking the lock and rmdir for giving it back (or removing one it judged stale).
// rmdir here removes only this holder's own file; anything else is reported as ENOTEMPTY, which
// sends a stale lock to file-lock.ts's takeover, where lock-judge.ts decides under a mutex.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { link, lstat, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { holderAlive, holderGone, parseHolder } from './lock-holder.ts';

type Callback = (err: NodeJS.ErrnoException | null) => void;

/** The fs proper-lockfile takes and gives back a lock with, for one holder whose record is `record`. */
export function holderLockFs(record: string) {
  const settle = (work: Promise<void>, done: Callback) =>
    work.then(
      () => done(null),
      (err: NodeJS.ErrnoException) => done(err),
    );
  return {
    stat: fs.stat,
    utimes: fs.utimes,
    realpath: fs.realpath,
    mkdir: (lockPath: string, done: Callback) => settle(makeLockFile(lockPath, record), done),
    rmdir: (lockPath: string, done: Callback) => settle(removeOwnLockFile(lockPath, record), done),
    /** At exit (proper-lockfile's exit hook): this holder's lock goes, as on release. */
    rmdirSync(lockPath: string) {
      if (fs.readFileSync(lockPath, 'utf8') === record) fs.unlinkSync(lockPath);
    },
  };
}

function tempFor(lockPath: string): string {
  return join(dirname(lockPath), `.${basename(lockPath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}
const TEMP = /^\.\d+\.[0-9a-f]{12}\.tmp$/;

/**
 * Removes the temporary files of `lockPath` that holders killed while making their lock left: one
 * whose record's process is gone, at once; one half-written, or whose process cannot be judged, once
 * untouched for staleMs. One whose process is alive is its own (it may be making its lock now).
 */
export async function sweepLockTemps(lockPath: string, staleMs: number): Promise<void> {
  const dir = dirname(lockPath);
  const prefix = `.${basename(lockPath)}`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || !TEMP.test(name.slice(prefix.length))) continue;
    const path = join(dir, name);
    const holder = parseHolder(await readFile(path, 'utf8').catch(() => undefined));
    if (holder !== undefined && holderAlive(holder)) continue;
    const old = await stat(path).then(
      (s) => Date.now() - s.mtimeMs > staleMs,
      () => false,
    );
    if ((holder !== undefined && holderGone(holder)) || old) await unlink(path).catch(() => undefined);
  }
}

/** The lock made with its record, or EEXIST when there is one (a file, or an older keyway's directory). */
async function makeLockFile(lockPath: string, record: string): Promise<void> {
  const temp = tempFor(lockPath);
  // Not fsynced: a lock says who runs, and a power cut ends every holder with it.
  await writeFile(temp, record, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, lockPath);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Removes the lock if it is this holder's; ENOENT is none (as proper-lockfile takes it); anyone else's is ENOTEMPTY. */
async function removeOwnLockFile(lockPath: string, record: string): Promise<void> {
  const st = await lstat(lockPath);
  if (st.isFile() && (await readFile(lockPath, 'utf8')) === record) {
    await unlink(lockPath);
    return;
  }
  throw Object.assign(new Error(`${lockPath} is another holder's lock`), { code: 'ENOTEMPTY' });
}
