// The fast path of a batch (log-files.ts): when the lock is free at the first try, the file is as
// this writer left it (its cached head still the chain's head) and no rotation is due, the batch
// is appended with synchronous calls, in one turn of the event loop. Write-ahead (proxy/stages/
// audit-write-ahead.ts) puts a batch in front of every injected request; on sequential traffic the
// async path's seven thread-pool round trips (lock, open, stat, append, close, unlock) were most of
// its cost. Anything else (the lock taken, the file moved, a rotation due, an error before the
// append) says "not now" and the async path runs, with its retries, head search and rotation.

import { closeSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import lockfile from 'proper-lockfile';
import type { ChainHead } from '../head.ts';
import { sealLine } from '../record.ts';

export interface KnownFile {
  dev: number;
  ino: number;
  size: number;
  head: ChainHead;
}

export interface AppendNowOptions {
  readonly path: string;
  readonly staleMs: number;
  readonly maxBytes: number;
  readonly onCompromised: (err: Error) => void;
}

/** The file after the append, or undefined: take the async path. Throws only when the append itself failed (the file is cut back first). */
export function appendNow(bodies: readonly string[], known: KnownFile, opts: AppendNowOptions): KnownFile | undefined {
  let release: (() => void) | undefined;
  try {
    release = lockfile.lockSync(opts.path, { stale: opts.staleMs, realpath: false, onCompromised: opts.onCompromised });
  } catch {
    return undefined; // held by another process (or the folder is gone): the async path waits or reports
  }
  let fd: number | undefined;
  try {
    fd = openSync(opts.path, 'a', 0o600);
    const st = fstatSync(fd);
    if (st.dev !== known.dev || st.ino !== known.ino || st.size !== known.size) return undefined;
    let { seq, hash } = known.head;
    let text = '';
    for (const body of bodies) {
      const sealed = sealLine(body, seq + 1, hash);
      seq += 1;
      hash = sealed.hash;
      text += sealed.line;
    }
    const bytes = Buffer.from(text, 'utf8');
    if (opts.maxBytes > 0 && st.size + bytes.length > opts.maxBytes) return undefined;
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written);
    } catch (err) {
      // A torn line would stay in the log for good: cut back (truncating works under the very limit that stopped the write).
      try {
        ftruncateSync(fd, st.size);
      } catch {
        // the next batch finds the torn line and starts after it on a new line
      }
      throw err;
    }
    return { dev: st.dev, ino: st.ino, size: st.size + bytes.length, head: { seq, hash } };
  } catch (err) {
    if (fd === undefined) return undefined;
    throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      release();
    } catch {
      // already taken over as stale: the append (if any) stands
    }
  }
}
