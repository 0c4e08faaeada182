// Writing a file so that a crash never leaves a half-written one behind: the bytes go to a temporary
// file in the same directory, fsynced, and only then take the final name. The temporary file is
// created with 'wx' (never following or reusing anything already there) and with its final mode, so
// permissions are never loosened after the fact: a secret is not readable by others, not even for
// the moment before a chmod (umask can only narrow the mode).

import { randomBytes } from 'node:crypto';
import { type FileHandle, link, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TEMP_SUFFIX = /^\.\d+\.[0-9a-f]{12}\.tmp$/;

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes `data` to a new temporary file beside `path` and fsyncs it; returns the temporary path. */
async function writeTemp(path: string, data: string, mode: number): Promise<string> {
  const tmp = tempPath(path);
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return tmp;
}

/** Creates or replaces `path` atomically: readers see the old bytes or the new, never a mix. */
export async function replaceFile(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Creates `path`, failing with EEXIST if it already exists: link(2) never replaces a file. */
export async function writeNewFile(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await link(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * replaceFile, then an fsync of the directory so that the rename itself survives a power cut (the
 * store: losing a write that was reported done would lose a credential).
 */
export async function replaceFileDurably(path: string, data: string, mode: number): Promise<void> {
  await replaceFile(path, data, mode);
  await syncDir(dirname(path));
}

/** An fsync of a directory, so a rename, link or unlink in it survives a power cut. */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms (Windows) and filesystems cannot open or fsync a directory; the rename has
    // still happened, it is just less certain to survive a power cut there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw err;
  } finally {
    await handle?.close();
  }
}

/**
 * Removes the temporary files of `path` (ours by their name) that were last modified more than
 * `olderThanMs` ago: what a writer killed between creating one and renaming it leaves behind. Best
 * effort: one that cannot be listed or removed is left for next time.
 */
export async function removeStaleTemps(path: string, olderThanMs: number): Promise<number> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}`;
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || !TEMP_SUFFIX.test(name.slice(prefix.length))) continue;
    const file = join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (st === undefined || !st.isFile() || Date.now() - st.mtimeMs <= olderThanMs) continue;
    await rm(file, { force: true }).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}
