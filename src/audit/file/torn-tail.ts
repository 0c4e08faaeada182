// A torn last line: the log's last bytes with no newline after them, left by a crash in the middle
// of an append (or a copy cut short). Appends happen under the audit lock, so a writer holding the
// lock that finds such bytes knows no one is still writing them. It keeps them aside byte for byte
// in a file of their own beside the log (`audit.jsonl.torn-<seq>`, 0600, `seq` the one of the line
// that records them), puts a `recovered` line in their place, chained as any other, naming where
// they were, how many bytes and their SHA-256, and the chain goes on after it. So the log holds
// only whole lines again, and `keyway audit verify` can tell this crash artifact (named by a
// chained line, its bytes checkable) from a damaged line (which still fails).

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AuditEvent } from '../record.ts';
import { adminEvent } from '../admin-event.ts';

const LF = 0x0a;
const CHUNK = 64 * 1024;

/** What a `recovered` line records of the bytes kept aside. */
export interface RecoveredBytes {
  /** The file they were kept in, beside the log (a name, never a path). */
  file: string;
  /** Where they started in the log file, in bytes: where the `recovered` line now starts. */
  offset: number;
  bytes: number;
  sha256: string;
}

/** The `action` of keyway's own line that records a torn tail kept aside. */
export const RECOVERED_ACTION = 'audit.recover';

/** Where the bytes after the file's last newline start, or null when it ends with one (or is empty). */
export async function tornTailAt(fh: FileHandle, size: number): Promise<number | null> {
  if (size === 0) return null;
  const buf = Buffer.alloc(Math.min(CHUNK, size));
  for (let end = size; end > 0; ) {
    const len = Math.min(buf.length, end);
    const { bytesRead } = await fh.read(buf, 0, len, end - len);
    const at = buf.subarray(0, bytesRead).lastIndexOf(LF);
    if (end === size && at === bytesRead - 1) return null;
    if (at !== -1) return end - len + at + 1;
    end -= len;
  }
  return 0;
}

/** The kept-aside file's name for the torn bytes the line at `seq` records (`n` > 1 if taken by other bytes). */
export function tornName(logPath: string, seq: number, n = 1): string {
  return `${basename(logPath)}.torn-${seq}${n > 1 ? `.${n}` : ''}`;
}

/** Whether `name` is one tornName() gives for this log: the only names verify reads. */
export function isTornName(logPath: string, name: string): boolean {
  const escaped = basename(logPath).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped}\\.torn-[1-9]\\d{0,15}(?:\\.[2-9]\\d{0,3})?$`).test(name);
}

/**
 * Copies the bytes from `offset` to `size` of the open log into a new file beside it, flushed to disk
 * before the log is cut (a crash then leaves them in both places, never in neither). A name already
 * holding the very same bytes (a recovery cut short by another crash) is used again.
 */
export async function keepAside(fh: FileHandle, logPath: string, offset: number, size: number, seq: number): Promise<RecoveredBytes> {
  const sha256 = await hashRange(fh, offset, size);
  const bytes = size - offset;
  for (let n = 1; n < 1000; n++) {
    const name = tornName(logPath, seq, n);
    const path = join(dirname(logPath), name);
    let out: FileHandle;
    try {
      out = await open(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await sameBytes(path, bytes, sha256)) return { file: name, offset, bytes, sha256 };
      continue;
    }
    try {
      await copyRange(fh, out, offset, size);
      await out.sync();
    } finally {
      await out.close();
    }
    return { file: name, offset, bytes, sha256 };
  }
  throw new Error(`too many kept-aside torn lines named for seq ${seq}`);
}

/**
 * Writes the sealed `recovered` line where the torn bytes started, then cuts what is left of them.
 * `r+`, not the writer's O_APPEND handle, on which a positioned write would land at the end. A crash
 * between the two leaves the rest of the torn bytes unterminated after a whole line: the next
 * writer keeps those aside in turn.
 */
export async function replaceTail(log: FileHandle, logPath: string, offset: number, size: number, line: string): Promise<number> {
  const bytes = Buffer.from(line, 'utf8');
  const fh = await open(logPath, 'r+');
  try {
    // The path must still name the file the torn bytes were read from (it may have been moved since).
    const [was, now] = await Promise.all([log.stat(), fh.stat()]);
    if (was.dev !== now.dev || was.ino !== now.ino) throw new Error('the audit log was moved while its torn last line was kept aside');
    let written = 0;
    while (written < bytes.length) written += (await fh.write(bytes, written, bytes.length - written, offset + written)).bytesWritten;
    if (offset + bytes.length < size) await fh.truncate(offset + bytes.length);
  } finally {
    await fh.close();
  }
  return offset + bytes.length;
}

/** keyway's own line recording torn bytes kept aside: not a request, not an operator's change. */
export function recoveredEvent(recovered: RecoveredBytes): AuditEvent {
  return adminEvent({
    client: 'keyway',
    action: RECOVERED_ACTION,
    actor: 'keyway',
    message: `a line cut short by a crash (${recovered.bytes} bytes at offset ${recovered.offset}, no newline after them) was kept aside in ${recovered.file} and removed from the log`,
    recovered,
  });
}

/** The SHA-256 (hex) of a kept-aside file, if it is a regular file of `bytes` bytes; null otherwise. */
export async function hashFile(path: string, bytes: number): Promise<string | null> {
  // A FIFO planted under the name must not hang whoever reads it, nor a link lead elsewhere.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch(() => null);
  if (fh === null) return null;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size !== bytes) return null;
    return await hashRange(fh, 0, st.size);
  } finally {
    await fh.close();
  }
}

async function sameBytes(path: string, bytes: number, sha256: string): Promise<boolean> {
  return (await hashFile(path, bytes)) === sha256;
}

async function hashRange(fh: FileHandle, from: number, to: number): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(1, to - from)));
  for (let pos = from; pos < to; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest('hex');
}

async function copyRange(from: FileHandle, to: FileHandle, start: number, end: number): Promise<void> {
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(1, end - start)));
  for (let pos = start; pos < end; ) {
    const { bytesRead } = await from.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) throw new Error('the torn bytes changed while they were kept aside');
    let written = 0;
    while (written < bytesRead) written += (await to.write(buf, written, bytesRead - written)).bytesWritten;
    pos += bytesRead;
  }
}
