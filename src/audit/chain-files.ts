// The files one audit chain lives in. The writer appends to `audit.jsonl`; when that would pass
// `audit.max_bytes` it renames it, under the audit lock, to `audit.<first seq>.jsonl` (first seq
// zero-padded to 12 digits, so a plain `ls` or shell glob lists the files in chain order) and the
// chain continues in a new `audit.jsonl`. A rotated file is never renamed again, so readers never
// see a half-shifted set of names (as with logrotate's .1 -> .2 shifting), and a file's name says
// where in the chain it starts, which verify checks.
//
// Files past `audit.keep` are deleted oldest first (unless younger than `audit.min_retention`).
// Before deleting, the writer records the last line it is about to delete and the range it deletes
// (pruned.ts, MAC'd with the head key) in a "pruned" file next to the head file. verify then starts
// the chain there and names every range pruned: the oldest kept file must continue exactly from the
// recorded line, so deleting any other file (or an old one by hand) still shows as a gap.

import { type FileHandle, open, readdir, rename } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { LineSplitter, readLastLines } from './lines.ts';
import { parseLine } from './record.ts';
import type { AuditLine } from './record.ts';

export interface RotatedFile {
  path: string;
  /** The seq of the file's first line, as its name says. */
  firstSeq: number;
  /** 0 normally; n > 0 for `audit.<seq>-<n>.jsonl`, made if the plain name was already taken. */
  dup: number;
}

const SEQ_DIGITS = 12;

function nameParts(path: string): { dir: string; stem: string; ext: string } {
  const base = basename(path);
  const ext = extname(base);
  return { dir: dirname(path), stem: ext === '' ? base : base.slice(0, -ext.length), ext };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `logs/audit.jsonl` + 501 -> `logs/audit.000000000501.jsonl`. */
export function rotatedPath(path: string, firstSeq: number, dup = 0): string {
  const { dir, stem, ext } = nameParts(path);
  const seq = String(firstSeq).padStart(SEQ_DIGITS, '0');
  return join(dir, `${stem}.${seq}${dup > 0 ? `-${dup}` : ''}${ext}`);
}

/** The rotated files of the log at `path`, oldest first. A missing folder has none. */
export async function listRotated(path: string): Promise<RotatedFile[]> {
  const { dir, stem, ext } = nameParts(path);
  const pattern = new RegExp(`^${escapeRegExp(stem)}\\.(\\d{${SEQ_DIGITS},})(?:-(\\d+))?${escapeRegExp(ext)}$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files: RotatedFile[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const firstSeq = Number(m[1]);
    if (!Number.isSafeInteger(firstSeq)) continue;
    files.push({ path: join(dir, name), firstSeq, dup: m[2] === undefined ? 0 : Number(m[2]) });
  }
  return files.sort((a, b) => a.firstSeq - b.firstSeq || a.dup - b.dup);
}

/** Every file of the chain in order: rotated files oldest first, then the live file. */
export async function chainFiles(path: string): Promise<string[]> {
  return [...(await listRotated(path)).map((f) => f.path), path];
}

/** The file opened for reading, or null when it does not exist (a log not yet written, or rotated away). */
async function openIfExists(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The first chained line of a file, looking at most `maxBytes` into it; null if none. */
export async function firstChainedLine(path: string, maxBytes = 256 * 1024): Promise<AuditLine | null> {
  const fh = await openIfExists(path);
  if (!fh) return null;
  try {
    const splitter = new LineSplitter();
    const buf = Buffer.alloc(64 * 1024);
    for (let pos = 0; pos < maxBytes; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      for (const text of splitter.push(buf.subarray(0, bytesRead))) {
        const line = parseLine(text);
        if (line !== null) return line;
      }
    }
    const rest = splitter.flush();
    return rest === null ? null : parseLine(rest);
  } finally {
    await fh.close();
  }
}

/** The last chained line of a file (looking at its last few lines); null if none. */
export async function lastChainedLine(path: string): Promise<AuditLine | null> {
  const fh = await openIfExists(path);
  if (!fh) return null;
  try {
    const st = await fh.stat();
    const tail = await readLastLines(fh, st.size, 8);
    for (const text of tail.lines.toReversed()) {
      const line = parseLine(text);
      if (line !== null) return line;
    }
    return null;
  } finally {
    await fh.close();
  }
}

/**
 * The last chained line of the newest rotated file: where the chain stands when the live file holds
 * none (just rotated, by this process or another, or a crash between rotating and appending).
 */
export async function lastRotatedLine(path: string): Promise<AuditLine | null> {
  const newest = (await listRotated(path)).at(-1);
  return newest === undefined ? null : lastChainedLine(newest.path);
}

/**
 * Rename the live file to its rotated name. Call only under the audit lock. Never replaces a file:
 * if the name is taken (a damaged log restarting its numbering), a `-n` suffix is added.
 */
export async function rotateFile(path: string, firstSeq: number): Promise<string> {
  const taken = new Set((await listRotated(path)).map((f) => f.path));
  for (let dup = 0; dup < 1000; dup++) {
    const target = rotatedPath(path, firstSeq, dup);
    if (taken.has(target)) continue;
    await rename(path, target);
    return target;
  }
  throw new Error(`too many rotated audit files named for seq ${firstSeq}`);
}
