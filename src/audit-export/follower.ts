// Reads the audit chain after a cursor, in batches: the live file from a remembered byte offset while
// the chain goes on in it, or, after a rotation, a restart or a log replaced (the file's inode or
// size says so), the rotated files and the live one from their start, skipping what is at or before
// the cursor. Only whole lines are read: a line still being appended is read next time.

import { open, stat } from 'node:fs/promises';
import { lastChainedLine, lastRotatedLine, listRotated } from '../audit/chain-files.ts';
import { LineSplitter } from '../audit/lines.ts';
import { parseLine, type AuditLine } from '../audit/record.ts';

const CHUNK = 64 * 1024;

interface Place {
  ino: number;
  /** Where the line after `seq` starts in the live file. */
  offset: number;
  seq: number;
}

export class ChainFollower {
  readonly #path: string;
  #place: Place | null = null;
  /** Where each line of the last batch read from the live file ends: what `passed` moves the place to. */
  #ends = new Map<number, number>();
  #endsIno = 0;

  constructor(path: string) {
    this.#path = path;
  }

  /** Up to `max` chained lines with a seq above `after`, oldest first. */
  async read(after: number, max: number): Promise<AuditLine[]> {
    this.#ends = new Map();
    const live = await stat(this.#path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    const place = this.#place;
    if (live !== null && place !== null && place.seq === after && place.ino === live.ino && live.size >= place.offset)
      return this.#readLive(live.ino, place.offset, after, max);
    // Lost our place: the rotated files past the cursor, then the live file from its start.
    this.#place = null;
    const lines: AuditLine[] = [];
    const rotated = await listRotated(this.#path);
    for (const [i, file] of rotated.entries()) {
      const nextFirst = rotated[i + 1]?.firstSeq;
      if (nextFirst !== undefined && nextFirst <= after + 1) continue;
      for await (const line of wholeLines(file.path, 0, after)) {
        lines.push(line.line);
        if (lines.length >= max) return lines;
      }
    }
    if (live === null) return lines;
    const last = lines.at(-1)?.seq ?? after;
    return [...lines, ...(await this.#readLive(live.ino, 0, last, max - lines.length))];
  }

  /** Forget the place: the next read looks at every file again (after a gap, in case a rotation raced the read). */
  forget(): void {
    this.#place = null;
  }

  /** The batch up to `seq` was delivered: the next read after it starts where its line ended. */
  passed(seq: number): void {
    const end = this.#ends.get(seq);
    this.#place = end === undefined ? null : { ino: this.#endsIno, offset: end, seq };
  }

  async #readLive(ino: number, offset: number, after: number, max: number): Promise<AuditLine[]> {
    const lines: AuditLine[] = [];
    this.#endsIno = ino;
    if (max <= 0) return lines;
    for await (const { line, end } of wholeLines(this.#path, offset, after)) {
      lines.push(line);
      this.#ends.set(line.seq, end);
      if (lines.length >= max) break;
    }
    // Nothing new: the place is where we are (set only if the cursor is where it was asked from).
    if (lines.length === 0 && this.#place === null) this.#place = await this.#placeAtEnd(ino, after);
    return lines;
  }

  /** When the live file holds nothing past `after`, its end is the place to read from next. */
  async #placeAtEnd(ino: number, after: number): Promise<Place | null> {
    const st = await stat(this.#path).catch(() => null);
    if (st === null || st.ino !== ino) return null;
    const last = await lastChainedLine(this.#path);
    // Only when the file's last line is the cursor's (or the file is empty), so no line is skipped.
    if (last !== null && last.seq !== after) return null;
    if (last === null && st.size > 0) return null;
    return { ino, offset: st.size, seq: after };
  }
}

/** The whole chained lines of a file from `offset`, with where each ends, skipping those at or before `after`. */
async function* wholeLines(path: string, offset: number, after: number): AsyncGenerator<{ line: AuditLine; end: number }> {
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (fh === null) return;
  try {
    const splitter = new LineSplitter();
    const buf = Buffer.alloc(CHUNK);
    let position = offset;
    let end = offset;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      for (const text of splitter.push(Buffer.from(buf.subarray(0, bytesRead)))) {
        end += Buffer.byteLength(text) + 1;
        const line = parseLine(text);
        if (line !== null && line.seq > after) yield { line, end };
      }
    }
  } finally {
    await fh.close();
  }
}

/** The seq and hash of the chain's last line, as the writer finds its head: the live file's, else the newest rotated file's. */
export async function headSeq(path: string): Promise<{ seq: number; hash: string } | null> {
  const last = (await lastChainedLine(path)) ?? (await lastRotatedLine(path));
  return last === null ? null : { seq: last.seq, hash: last.hash };
}
