// Reading a JSON-lines file without loading it whole: forwards in chunks (verify, query, follow) and
// backwards from the end (the writer's chain head, `tail -n`). Lines are split on the byte 0x0A only:
// JSON.stringify escapes CR and LF inside strings, so a raw LF always ends a line, while a splitter
// that also broke on U+2028 or a lone CR (as readline may) could cut a line in two.

import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

const LF = 0x0a;
const CHUNK = 64 * 1024;

/** Turns a stream of chunks into complete lines, holding back a trailing partial line. */
export class LineSplitter {
  #partial: Buffer[] = [];
  #partialBytes = 0;

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let from = 0;
    for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, from)) {
      const piece = chunk.subarray(from, at);
      if (this.#partialBytes > 0) {
        this.#partial.push(piece);
        lines.push(Buffer.concat(this.#partial).toString('utf8'));
        this.#partial = [];
        this.#partialBytes = 0;
      } else {
        lines.push(piece.toString('utf8'));
      }
      from = at + 1;
    }
    if (from < chunk.length) {
      this.#partial.push(chunk.subarray(from));
      this.#partialBytes += chunk.length - from;
    }
    return lines;
  }

  /** Bytes received that do not yet end in a newline. */
  get pendingBytes(): number {
    return this.#partialBytes;
  }

  /** The unterminated last line, if any (a torn write, or one still being appended). */
  flush(): string | null {
    if (this.#partialBytes === 0) return null;
    const text = Buffer.concat(this.#partial).toString('utf8');
    this.#partial = [];
    this.#partialBytes = 0;
    return text;
  }
}

/**
 * Every line of a file (by path, or an open handle, which stays open) from byte `start`, including an
 * unterminated last line. Rejects with the fs error (ENOENT, EISDIR, ...) for the caller to translate.
 */
export async function* readLines(source: string | FileHandle, start = 0): AsyncGenerator<string> {
  const splitter = new LineSplitter();
  const stream =
    typeof source === 'string'
      ? createReadStream(source, { start, highWaterMark: CHUNK })
      : source.createReadStream({ start, highWaterMark: CHUNK, autoClose: false });
  for await (const chunk of stream) {
    yield* splitter.push(chunk as Buffer);
  }
  const last = splitter.flush();
  if (last !== null) yield last;
}

/** One line as readLinesAt() gives it: where it starts in the file, and whether a newline ends it. */
export interface PlacedLine {
  text: string;
  /** Its first byte's offset in the file. */
  offset: number;
  /** False only for the file's last bytes when no newline follows them (a torn write, or one under way). */
  terminated: boolean;
}

/**
 * Every line of a file with its byte offset (verify checks a `recovered` line's). Offsets are counted
 * from the UTF-8 length of each line, exact for every line keyway writes (valid UTF-8); a line with
 * invalid bytes fails verify on its own, whatever the offsets after it.
 */
export async function* readLinesAt(path: string): AsyncGenerator<PlacedLine> {
  const splitter = new LineSplitter();
  let offset = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
    for (const text of splitter.push(chunk as Buffer)) {
      yield { text, offset, terminated: true };
      offset += Buffer.byteLength(text) + 1;
    }
  }
  const last = splitter.flush();
  if (last !== null) yield { text: last, offset, terminated: false };
}

export interface TailLines {
  /** Up to `count` last lines, oldest first; the last may be unterminated (see endsWithNewline). */
  lines: string[];
  endsWithNewline: boolean;
}

/**
 * The last `count` lines of the first `size` bytes of an open file, read backwards in chunks so the
 * cost does not grow with the file. `maxBytes` bounds the scan when lines are unexpectedly long.
 */
export async function readLastLines(fh: FileHandle, size: number, count: number, maxBytes = 4 * 1024 * 1024): Promise<TailLines> {
  if (size === 0 || count <= 0) return { lines: [], endsWithNewline: true };
  const chunks: Buffer[] = [];
  let pos = size;
  let newlines = 0;
  let scanned = 0;
  // `count` newlines before the end guarantee the earliest kept line is complete; the file's final
  // newline ends the last line rather than separating two, so it is not counted.
  while (pos > 0 && newlines < count && scanned < maxBytes) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    const chunk = buf.subarray(0, bytesRead);
    chunks.unshift(chunk);
    scanned += bytesRead;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === LF) newlines++;
    if (pos + len === size && chunk[chunk.length - 1] === LF) newlines--;
  }
  const all = Buffer.concat(chunks);
  const endsWithNewline = all[all.length - 1] === LF;
  const text = all.toString('utf8', 0, endsWithNewline ? all.length - 1 : all.length);
  const parts = text.split('\n');
  // If the scan stopped before the file start, the first part may be the tail of a longer line.
  if (pos > 0) parts.shift();
  return { lines: parts.slice(-count), endsWithNewline };
}
