// The chain head, kept apart from the log: `{seq, hash, mac}` of the last line written. Deleting the
// log's last lines leaves every remaining line valid, so only a record held elsewhere can show that
// the tail is gone. The MAC (keyed by a secret the log's editor is assumed not to hold) stops someone
// from rewriting the head to match a shortened log.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';

export interface ChainHead {
  seq: number;
  hash: string;
}

export type HeadState = { kind: 'missing' } | { kind: 'unreadable' } | { kind: 'bad_mac'; head: ChainHead } | { kind: 'ok'; head: ChainHead };

export function headMac(key: Buffer, head: ChainHead): string {
  return createHmac('sha256', key).update(`${head.seq}:${head.hash}`).digest('hex');
}

let tempCounter = 0;

/**
 * Replace the head file atomically (temp file + rename), mode 0600. Each call has its own temp name
 * because several writers (in this process or others) may replace the head at the same moment.
 * Not fsynced: see the writer for why a stale head after a crash is acceptable.
 */
export async function writeHead(path: string, key: Buffer, head: ChainHead): Promise<void> {
  await writeHeadRecord(path, head, headMac(key, head));
}

/** Read and authenticate the head. Only an absent file is 'missing'; other read errors throw. */
export async function readHead(path: string, key: Buffer): Promise<HeadState> {
  return readHeadRecord(path, (head) => headMac(key, head));
}

// ---- `{seq, hash, mac}` files: the head, and the pruned record (pruned.ts), differ only in the MAC ----

/**
 * Writes `{seq, hash, mac}` as writeHead does: temp file + rename, mode 0600, not fsynced. `extra`
 * fields follow (the pruned record's ranges); a reader that does not know them ignores them.
 */
export async function writeHeadRecord(path: string, head: ChainHead, mac: string, extra: Record<string, unknown> = {}): Promise<void> {
  const body = `${JSON.stringify({ seq: head.seq, hash: head.hash, mac, ...extra })}\n`;
  const temp = `${path}.${process.pid}.${++tempCounter}.tmp`;
  try {
    await writeFile(temp, body, { mode: 0o600 });
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** Reads a `{seq, hash, mac}` file and checks its MAC against `macOf`. Only an absent file is 'missing'. */
export async function readHeadRecord(path: string, macOf: (head: ChainHead) => string): Promise<HeadState> {
  const text = await readIfExists(path);
  return text === null ? { kind: 'missing' } : parseHeadRecord(text, macOf);
}

/** The file's text, or null when it does not exist; other read errors throw. */
export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** A `{seq, hash, mac}` record's text, its MAC checked against `macOf`. */
export function parseHeadRecord(text: string, macOf: (head: ChainHead) => string): HeadState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'unreadable' };
  }
  if (typeof value !== 'object' || value === null) return { kind: 'unreadable' };
  const { seq, hash, mac } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || typeof hash !== 'string' || typeof mac !== 'string') {
    return { kind: 'unreadable' };
  }
  const head: ChainHead = { seq: seq as number, hash };
  return sameMac(mac, macOf(head)) ? { kind: 'ok', head } : { kind: 'bad_mac', head };
}

/** Whether a stored hex MAC is the expected one (in constant time). */
export function sameMac(got: string, want: string): boolean {
  const a = Buffer.from(got, 'hex');
  const b = Buffer.from(want, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
