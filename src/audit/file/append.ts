// The one append a batch makes, and what keeps a file-size limit from killing the process: the two
// pieces of the writer that deal with a write failing part-way.

import type { FileHandle } from 'node:fs/promises';

/**
 * Appends `text` to a file that was `sizeBefore` bytes long (we hold the lock, so nobody else
 * appended). If the append fails partway (EFBIG past RLIMIT_FSIZE, ENOSPC), the file is cut back to
 * `sizeBefore`: a torn line is for a crash to leave, not a write that failed. Truncating never grows a file, so it
 * works under the very limit that stopped the write.
 */
export async function appendOrUndo(fh: FileHandle, text: string, sizeBefore: number): Promise<void> {
  try {
    await fh.appendFile(text);
  } catch (err) {
    await fh.truncate(sizeBefore).catch(() => undefined);
    throw err;
  }
}

let fileSizeSignalIgnored = false;

/**
 * A process past its RLIMIT_FSIZE (a file-size quota, or a test's prlimit) gets SIGXFSZ, whose
 * default action kills it. With a handler installed, the write fails with EFBIG instead, which the
 * writer turns into audit_unavailable like any other full disk.
 */
export function ignoreFileSizeSignal(): void {
  if (fileSizeSignalIgnored) return;
  fileSizeSignalIgnored = true;
  process.on('SIGXFSZ', () => undefined);
}
