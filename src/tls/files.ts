// The two ways the CA directory is written. Both go through a temporary file so a crash never
// leaves a half-written PEM behind, and both create that file with its final mode: permissions are
// never loosened after the fact, so the CA key is not readable by others even for a moment.
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';

async function writeTemp(path: string, data: string, mode: number): Promise<string> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  // 'wx' refuses to follow or reuse anything already at tmp; `mode` is applied at creation (umask can only narrow it).
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return tmp;
}

/** Create `path`, failing with EEXIST if it already exists: link(2) never replaces a file. */
export async function writeNewFile(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await link(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Create or replace `path` atomically; for derived files such as the trust bundle. */
export async function replaceFile(path: string, data: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, data, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
