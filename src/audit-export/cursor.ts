// The durable cursor of one export target: the seq and hash of the last line the receiver was given,
// in data/audit-export/<key>.json (0600, replaced atomically). The next batch starts after it, so a
// restart sends neither a line twice nor skips one; its hash ties it to the chain, so a log
// replaced under it (a new chain, a restored copy) is noticed rather than silently followed.

import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFile } from '../files/atomic-write.ts';

export interface Cursor {
  seq: number;
  hash: string;
}

/** The file a target's cursor is kept in: named by a hash of its format and URL, so each target has its own. */
export function cursorPath(dataDir: string, format: string, to: string): string {
  const key = createHash('sha256').update(`${format} ${to}`).digest('hex').slice(0, 16);
  return join(dataDir, 'audit-export', `${format}-${key}.json`);
}

/** The cursor kept for a target; null when none was (a target new to this home). */
export async function readCursor(path: string): Promise<Cursor | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<Cursor>;
  if (!Number.isSafeInteger(parsed.seq) || (parsed.seq as number) < 0 || typeof parsed.hash !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.hash))
    throw new Error(`${path} is not an audit export cursor`);
  return { seq: parsed.seq as number, hash: parsed.hash };
}

export async function writeCursor(path: string, cursor: Cursor, target: { format: string; to: string }): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const record = { format: target.format, to: target.to, seq: cursor.seq, hash: cursor.hash, at: new Date().toISOString() };
  await replaceFile(path, `${JSON.stringify(record)}\n`, 0o600);
}
