// The audit log newest line first, reading files backwards from their end: a page of the newest
// lines costs what lies between the end and that page, not the whole log.

import { open, type FileHandle } from 'node:fs/promises';
import { KeywayError } from '../../errors/index.ts';
import { compileFilter, type AuditFilter } from './filter.ts';
import { listRotated } from '../chain-files.ts';
import { parseLine, type AuditLine } from '../record.ts';

const LF = 0x0a;
const CHUNK = 64 * 1024;
/** A "line" longer than this is not an audit line (the writer's are a few hundred bytes): skipped unread. */
const MAX_LINE_BYTES = 1024 * 1024;

/**
 * Lines matching `filter` with a seq below `before` (all when unset), newest first, across the live
 * file and the rotated ones. The live file is opened before the rotated files are listed: if it is
 * rotated in between, its lines are met twice (through the open handle and under the new name),
 * and only strictly decreasing seqs are yielded, so none is given twice and none is missed.
 */
export async function* readAuditBackwards(path: string, filter: AuditFilter = {}, before?: number): AsyncGenerator<AuditLine> {
  const match = compileFilter(filter);
  const live = await openIfExists(path);
  let below = before ?? Number.POSITIVE_INFINITY;
  try {
    const rotated = await listRotated(path).catch((err: unknown) => {
      throw new KeywayError('audit_invalid', `the folder of audit log ${path} cannot be listed`, { cause: err });
    });
    const files: Array<{ path: string; handle: FileHandle | null }> = [{ path, handle: live }];
    for (const file of rotated.toReversed()) if (file.firstSeq < below) files.push({ path: file.path, handle: null });
    for (const file of files) {
      const fh = file.handle ?? (await openIfExists(file.path));
      if (fh === null) continue;
      try {
        for await (const text of linesBackwards(fh)) {
          const line = parseLine(text);
          if (line === null || line.seq >= below) continue;
          below = line.seq;
          if (match(line)) yield line;
        }
      } catch (err) {
        throw new KeywayError('audit_invalid', `audit log ${file.path} cannot be read`, { cause: err });
      } finally {
        if (fh !== live) await fh.close();
      }
    }
  } finally {
    await live?.close();
  }
}

/** Every line of an open file, last first; an unterminated last line too (it will not parse if torn). */
async function* linesBackwards(fh: FileHandle): AsyncGenerator<string> {
  const { size } = await fh.stat();
  let pos = size;
  // The bytes after the last LF seen (going backwards) that belong to a line starting further back.
  let carry = Buffer.alloc(0);
  // Set while skipping the rest of an over-long line, whose end was already dropped.
  let skipping = false;
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    const chunk = carry.length > 0 ? Buffer.concat([buf.subarray(0, bytesRead), carry]) : buf.subarray(0, bytesRead);
    let end = chunk.length;
    for (let i = chunk.length - 1; i >= 0; i--) {
      if (chunk[i] !== LF) continue;
      if (skipping) skipping = false;
      else if (i + 1 < end) yield chunk.toString('utf8', i + 1, end);
      end = i;
    }
    carry = chunk.subarray(0, end);
    if (carry.length > MAX_LINE_BYTES) {
      carry = Buffer.alloc(0);
      skipping = true;
    }
  }
  if (carry.length > 0 && !skipping) yield carry.toString('utf8');
}

async function openIfExists(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new KeywayError('audit_invalid', `audit log ${path} cannot be read`, { cause: err });
  }
}
