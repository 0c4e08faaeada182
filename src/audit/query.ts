// Reading the audit log for people: filtered listing and `tail [-f]`. Lines that do not parse are
// skipped here; reporting them is verify's job.

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywayError } from '../errors/index.ts';
import { LineSplitter, readLastLines, readLines } from './lines.ts';
import { parseLine } from './record.ts';
import type { AuditDecision, AuditLine } from './record.ts';

export interface AuditFilter {
  agent?: string;
  grant?: string;
  decision?: AuditDecision;
  code?: string;
  /** Compared without regard to case. */
  host?: string;
  /** Lines at or after this time. */
  since?: Date;
  /** Lines before this time. */
  until?: Date;
}

export interface TailOptions {
  /** How many existing lines to show first. */
  lines: number;
  /** Keep polling for appended lines until `signal` aborts. */
  follow: boolean;
  signal?: AbortSignal;
  /** Poll interval while following; default 250 ms. */
  intervalMs?: number;
}

/** Lines matching every given filter field, oldest first. A missing log yields nothing. */
export async function* readAudit(path: string, filter: AuditFilter = {}): AsyncGenerator<AuditLine> {
  const match = compileFilter(filter);
  try {
    for await (const text of readLines(path)) {
      const line = parseLine(text);
      if (line !== null && match(line)) yield line;
    }
  } catch (err) {
    if (isNotFound(err)) return;
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
}

function compileFilter(f: AuditFilter): (line: AuditLine) => boolean {
  const host = f.host?.toLowerCase();
  const since = f.since?.getTime();
  const until = f.until?.getTime();
  return (line) => {
    if (f.agent !== undefined && line.agent !== f.agent) return false;
    if (f.grant !== undefined && line.grant !== f.grant) return false;
    if (f.decision !== undefined && line.decision !== f.decision) return false;
    if (f.code !== undefined && line.code !== f.code) return false;
    if (host !== undefined && line.host.toLowerCase() !== host) return false;
    if (since !== undefined || until !== undefined) {
      const t = Date.parse(line.ts);
      if (Number.isNaN(t)) return false;
      if (since !== undefined && t < since) return false;
      if (until !== undefined && t >= until) return false;
    }
    return true;
  };
}

/**
 * The last `lines` lines, then (with `follow`) each line appended later. Polls rather than using
 * fs.watch, which is unreliable on network and container filesystems. Ends quietly when `signal`
 * aborts. A log that shrinks or is replaced is read again from its start.
 */
export async function* tailAudit(path: string, opts: TailOptions): AsyncGenerator<AuditLine> {
  const { signal } = opts;
  let offset = 0;
  let ino = -1;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      ino = st.ino;
      const tail = await readLastLines(fh, st.size, opts.lines);
      const complete = tail.endsWithNewline ? tail.lines : tail.lines.slice(0, -1);
      const partial = tail.endsWithNewline ? '' : (tail.lines.at(-1) ?? '');
      offset = st.size - Buffer.byteLength(partial);
      for (const text of complete) {
        const line = parseLine(text);
        if (line !== null) yield line;
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (!isNotFound(err)) throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
  if (!opts.follow) return;

  const interval = opts.intervalMs ?? 250;
  while (!isAborted(signal)) {
    try {
      await sleep(interval, undefined, signal === undefined ? {} : { signal });
    } catch {
      return; // aborted
    }
    const st = await stat(path).catch((err: unknown) => {
      if (isNotFound(err)) return null;
      throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
    });
    if (st === null) {
      offset = 0;
      continue;
    }
    if (st.ino !== ino || st.size < offset) {
      ino = st.ino;
      offset = 0;
    }
    if (st.size === offset) continue;
    const splitter = new LineSplitter();
    let consumed = 0;
    for await (const chunk of createReadStream(path, { start: offset, end: st.size - 1 })) {
      const buf = chunk as Buffer;
      consumed += buf.length;
      for (const text of splitter.push(buf)) {
        const line = parseLine(text);
        if (line !== null) yield line;
        if (isAborted(signal)) return;
      }
    }
    // An unterminated last line is still being appended: read it again next time.
    offset += consumed - splitter.pendingBytes;
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
