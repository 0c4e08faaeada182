// Reading the audit log for people: filtered listing and `tail [-f]`. Lines that do not parse are
// skipped here; reporting them is verify's job.

import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywayError } from '../../errors/index.ts';
import { listRotated } from '../chain-files.ts';
import { LineSplitter, readLastLines, readLines } from '../lines.ts';
import { parseLine } from '../record.ts';
import { lastRequests, linesPerRequest } from './requests.ts';
import type { AuditLine } from '../record.ts';
import { compileFilter, type AuditFilter } from './filter.ts';

export interface TailOptions {
  /** How many existing lines to show first. */
  lines: number;
  /** Keep polling for appended lines until `signal` aborts. */
  follow: boolean;
  signal?: AbortSignal;
  /** Poll interval while following; default 250 ms. */
  intervalMs?: number;
  /** Called once the reader is placed after the initial lines: every line appended later is followed. */
  onPositioned?: () => void;
  /**
   * One entry per request (requests.ts): the last `lines` requests (a write-ahead line whose outcome
   * is among them left out), then, following, outcome lines only (a `sent` line's outcome follows it).
   */
  perRequest?: boolean;
}

/** Which part of the chain to read, by `seq`; files wholly before it are not opened. */
export interface SeqRange {
  /** Only lines with a greater seq. */
  after?: number | undefined;
}

/**
 * Lines matching every given filter field, oldest first, across the rotated files and the live one.
 * A missing log yields nothing; so does a rotated file deleted while it is being read. With `range`,
 * a rotated file whose name puts all its lines before it is skipped unread (a rotated file's name is
 * its first seq, so the next file's name bounds its last).
 *
 * The live file is opened before the rotated files are listed: if the writer rotates it in between,
 * its lines are met under the new name and again through the open handle, which then gives only the
 * lines past the highest seq already read. (Listing first could miss that file altogether.)
 */
export async function* readAudit(path: string, filter: AuditFilter = {}, range: SeqRange = {}): AsyncGenerator<AuditLine> {
  // One entry per request (requests.ts), then the filter: a request's write-ahead line is left out
  // once its outcome is read, whether or not the outcome matches (an injection that ended in an error).
  const match = compileFilter(filter);
  for await (const line of linesPerRequest(readChain(path, range))) if (match(line)) yield line;
}

/** Every chained line, oldest first, as readAudit describes. */
async function* readChain(path: string, range: SeqRange): AsyncGenerator<AuditLine> {
  const match = () => true;
  const { after } = range;
  const live = await open(path, 'r').catch((err: unknown) => {
    if (isNotFound(err)) return null;
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  });
  try {
    const rotated = await listRotated(path).catch((err: unknown) => {
      throw new KeywayError('audit_invalid', `the folder of audit log ${path} cannot be listed`, { cause: err });
    });
    let highest = after ?? Number.NEGATIVE_INFINITY;
    for (const [i, file] of rotated.entries()) {
      const nextFirst = rotated[i + 1]?.firstSeq;
      if (after !== undefined && nextFirst !== undefined && nextFirst <= after + 1) continue;
      try {
        for await (const line of matchingLines(readLines(file.path), match, after)) {
          highest = Math.max(highest, line.seq);
          yield line;
        }
      } catch (err) {
        if (isNotFound(err)) continue;
        throw new KeywayError('audit_invalid', `audit log ${file.path} cannot be read`, { cause: err });
      }
    }
    if (live === null) return;
    try {
      yield* matchingLines(readLines(live), match, Number.isFinite(highest) ? highest : undefined);
    } catch (err) {
      throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
    }
  } finally {
    await live?.close().catch(() => undefined);
  }
}

async function* matchingLines(texts: AsyncIterable<string>, match: (line: AuditLine) => boolean, after: number | undefined): AsyncGenerator<AuditLine> {
  for await (const text of texts) {
    const line = parseLine(text);
    if (line === null || !match(line) || (after !== undefined && line.seq <= after)) continue;
    yield line;
  }
}

/**
 * The last `lines` lines (from the rotated files too when the live file has fewer), then (with
 * `follow`) each line appended later. Polls rather than using fs.watch, which is unreliable on
 * network and container filesystems. Ends quietly when `signal` aborts.
 *
 * Following keeps the live file open: when the writer rotates it (a rename, so the open handle still
 * reads the same file), the rest of the old file is read to its end before moving on to the new one,
 * so no line is skipped. A log replaced or truncated by someone else is read again from its start.
 */
export async function* tailAudit(path: string, opts: TailOptions): AsyncGenerator<AuditLine> {
  const { signal } = opts;
  let reader: FollowReader | null = null;
  try {
    const first = await openInitial(path, opts.perRequest ? opts.lines * 2 : opts.lines);
    // Held before yielding, so a consumer that stops early still closes it (finally below).
    reader = first.reader;
    opts.onPositioned?.();
    for (const line of opts.perRequest ? lastRequests(first.lines, opts.lines) : first.lines) yield line;
    if (!opts.follow) return;
    const interval = opts.intervalMs ?? 250;
    while (!isAborted(signal)) {
      try {
        await sleep(interval, undefined, signal === undefined ? {} : { signal });
      } catch {
        return; // aborted
      }
      if (reader === null) {
        reader = await FollowReader.open(path, 0);
        if (reader === null) continue;
      }
      for await (const line of reader.readNew()) {
        if (!opts.perRequest || line.phase !== 'sent') yield line;
        if (isAborted(signal)) return;
      }
      const st = await stat(path).catch((err: unknown) => {
        if (isNotFound(err)) return null;
        throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
      });
      if (st !== null && st.ino === reader.ino && st.dev === reader.dev) {
        if (st.size < reader.offset) reader.offset = 0; // truncated in place: read it again
        continue;
      }
      // Rotated (or replaced): finish the old file, then follow the new live file from its start.
      for await (const line of reader.readNew()) {
        if (!opts.perRequest || line.phase !== 'sent') yield line;
        if (isAborted(signal)) return;
      }
      await reader.close();
      reader = st === null ? null : await FollowReader.open(path, 0);
      if (reader !== null) {
        for await (const line of reader.readNew()) {
          if (!opts.perRequest || line.phase !== 'sent') yield line;
          if (isAborted(signal)) return;
        }
      }
    }
  } finally {
    await reader?.close();
  }
}

/** The last `count` lines across files, and a reader positioned after them on the live file. */
async function openInitial(path: string, count: number): Promise<{ lines: AuditLine[]; reader: FollowReader | null }> {
  const reader = await FollowReader.open(path, null);
  try {
    const lines: AuditLine[] = reader === null ? [] : await reader.lastLines(count);
    if (lines.length < count) {
      const rotated = await listRotated(path).catch((err: unknown) => {
        throw new KeywayError('audit_invalid', `the folder of audit log ${path} cannot be listed`, { cause: err });
      });
      for (const file of rotated.toReversed()) {
        if (lines.length >= count) break;
        const older = await lastLinesOf(file.path, count - lines.length);
        lines.unshift(...older);
      }
    }
    return { lines, reader };
  } catch (err) {
    // The caller only takes charge of the reader once this returns.
    await reader?.close();
    throw err;
  }
}

async function lastLinesOf(path: string, count: number): Promise<AuditLine[]> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (isNotFound(err)) return [];
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
  try {
    const st = await fh.stat();
    const tail = await readLastLines(fh, st.size, count);
    return tail.lines.map(parseLine).filter((l): l is AuditLine => l !== null);
  } finally {
    await fh.close();
  }
}

/** An open live file and how far it has been read. */
class FollowReader {
  readonly #fh: FileHandle;
  readonly ino: number;
  readonly dev: number;
  offset: number;

  private constructor(fh: FileHandle, ino: number, dev: number, offset: number) {
    this.#fh = fh;
    this.ino = ino;
    this.dev = dev;
    this.offset = offset;
  }

  /** Open the live file at `offset` (null: at its end). Null if it does not exist. */
  static async open(path: string, offset: number | null): Promise<FollowReader | null> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (isNotFound(err)) return null;
      throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
    }
    try {
      const st = await fh.stat();
      return new FollowReader(fh, st.ino, st.dev, offset ?? st.size);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** The last `count` complete lines before the current end; leaves the reader after them. */
  async lastLines(count: number): Promise<AuditLine[]> {
    const st = await this.#fh.stat();
    const tail = await readLastLines(this.#fh, st.size, count);
    const complete = tail.endsWithNewline ? tail.lines : tail.lines.slice(0, -1);
    const partial = tail.endsWithNewline ? '' : (tail.lines.at(-1) ?? '');
    // An unterminated last line is still being appended: follow reads it once it is complete.
    this.offset = st.size - Buffer.byteLength(partial);
    return complete.map(parseLine).filter((l): l is AuditLine => l !== null);
  }

  /** Complete lines appended since the last read. */
  async *readNew(): AsyncGenerator<AuditLine> {
    const splitter = new LineSplitter();
    const buf = Buffer.alloc(64 * 1024);
    // Bounded: reads at most what the file held when this call started.
    const { size } = await this.#fh.stat();
    let pos = this.offset;
    while (pos < size) {
      const { bytesRead } = await this.#fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      for (const text of splitter.push(buf.subarray(0, bytesRead))) {
        const line = parseLine(text);
        if (line !== null) yield line;
      }
    }
    this.offset = pos - splitter.pendingBytes;
  }

  close(): Promise<void> {
    return this.#fh.close().catch(() => undefined);
  }
}

// A function, not an inline check: TypeScript would otherwise narrow `signal.aborted` to false
// inside the loop and reject the re-check after an await.
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
