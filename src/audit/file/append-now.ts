// The fast path of write-ahead batches (log-files.ts): the audit lock and the live file held across
// back-to-back batches, each appended with one synchronous write. Write-ahead (proxy/stages/
// audit-write-ahead.ts) puts a batch in front of every injected request; taking the lock and
// opening the file for each (mkdir, utimes, stat, open, fstat, write, close, rmdir) was most of its
// cost. A hold is taken only when the lock is free at the first try and the file is as this writer
// left it, and it ends when the writer goes idle, after MAX_HOLD_MS (so other processes get their
// turn: log-files.ts leaves a gap then), or on anything unusual (a rotation due, an error), where the
// async path takes over with its retries, head search and rotation.

import { closeSync, fstatSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import lockfile from 'proper-lockfile';
import type { ChainHead } from '../head.ts';
import { sealBatch } from '../seal-batch.ts';

export interface KnownFile {
  dev: number;
  ino: number;
  size: number;
  head: ChainHead;
}

export interface HoldOptions {
  readonly path: string;
  readonly staleMs: number;
  readonly onCompromised: (err: Error) => void;
}

export class HeldLog {
  readonly takenAt = performance.now();
  readonly #path: string;
  readonly #fd: number;
  readonly #release: () => void;
  #known: KnownFile;
  #ended = false;

  private constructor(path: string, fd: number, release: () => void, known: KnownFile) {
    this.#path = path;
    this.#fd = fd;
    this.#release = release;
    this.#known = known;
  }

  /** The lock and the file, if the lock is free now and the file is as `known` says; else undefined. */
  static take(known: KnownFile, opts: HoldOptions): HeldLog | undefined {
    let release: () => void;
    try {
      release = lockfile.lockSync(opts.path, { stale: opts.staleMs, realpath: false, onCompromised: opts.onCompromised });
    } catch {
      return undefined; // held by another process (or the folder is gone): the async path waits or reports
    }
    let fd: number | undefined;
    try {
      fd = openSync(opts.path, 'a', 0o600);
      const st = fstatSync(fd);
      if (st.dev === known.dev && st.ino === known.ino && st.size === known.size) return new HeldLog(opts.path, fd, release, known);
    } catch {
      // the async path will say what is wrong
    }
    if (fd !== undefined) closeSync(fd);
    quietly(release);
    return undefined;
  }

  get known(): KnownFile {
    return this.#known;
  }

  /**
   * Seals and appends `bodies` after the held file's head. Nothing is written when the append would
   * pass `maxBytes` ('rotate': the async path rotates) or the log's path no longer leads to the held
   * file ('moved': the async path opens what is there, or fails and refuses). Throws when the write
   * failed, after cutting the file back to where it was (else the next batch has a torn line to keep aside).
   */
  append(bodies: readonly string[], maxBytes: number): KnownFile | 'rotate' | 'moved' {
    const known = this.#known;
    // The file or its folder moved, replaced or removed since the hold was taken: a line written to
    // the held descriptor would land where no reader of the log looks. Checked before every batch,
    // so no request goes out on a line written there (watch.ts sees it without traffic).
    if (!this.#pathLeadsHere(known)) return 'moved';
    const { bytes, seq, hash } = sealBatch(bodies, known.head.seq, known.head.hash);
    if (maxBytes > 0 && known.size + bytes.length > maxBytes) return 'rotate';
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(this.#fd, bytes, written);
    } catch (err) {
      try {
        ftruncateSync(this.#fd, known.size);
      } catch {
        // the next batch finds the torn line, keeps it aside and records it (torn-tail.ts)
      }
      throw err;
    }
    this.#known = { dev: known.dev, ino: known.ino, size: known.size + bytes.length, head: { seq, hash } };
    return this.#known;
  }

  #pathLeadsHere(known: KnownFile): boolean {
    try {
      const st = statSync(this.#path, { throwIfNoEntry: false });
      return st !== undefined && st.ino === known.ino && st.dev === known.dev;
    } catch {
      return false; // ENOTDIR (the folder is a file now), a loop of links, ...
    }
  }

  /** Closes the file and gives the lock back; once. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    try {
      closeSync(this.#fd);
    } catch {
      // already closed
    }
    quietly(this.#release);
  }
}

function quietly(release: () => void): void {
  try {
    release();
  } catch {
    // already taken over as stale: what was appended stands
  }
}
