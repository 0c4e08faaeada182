// One batch's trip into the log's files, under the inter-process lock: find the chain head (from a
// cache of where this writer left the file, or by reading the file), seal and append the lines, and
// rotate and prune (prune.ts) on the way when `maxBytes` is set. The writer (writer.ts) decides when a batch
// runs and what a failure means; this module only touches the files.

import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { acquireFileLock, type FileLockOptions } from '../../files/file-lock.ts';
import { firstChainedLine, lastRotatedLine, rotateFile } from '../chain-files.ts';
import { Pruner } from './prune.ts';
import type { RetentionHold } from '../retention.ts';
import { readHead } from '../head.ts';
import type { ChainHead, HeadState } from '../head.ts';
import { appendOrUndo } from './append.ts';
import { HeldLog } from './append-now.ts';
import { readLastLines } from '../lines.ts';
import { GENESIS_HASH, parseLine, sealLine } from '../record.ts';
import { keepAside, replaceTail, tornTailAt, type RecoveredBytes } from './torn-tail.ts';

export interface LogFilesOptions {
  path: string;
  headPath: string;
  headKey: Buffer;
  /** Rotate before a line would take the live file past this many bytes; 0: never. */
  maxBytes: number;
  /** How many rotated files to keep. */
  keep: number;
  /** A file last written less than this long ago is never deleted, even past `keep`; 0: off. */
  minRetentionMs: number;
  prunedPath: string;
  /** Hears when min_retention starts or stops keeping files past `keep` (null: none held now). */
  onRetention?: ((hold: RetentionHold | null) => void) | undefined;
  /** Hears when rotation starts failing (the error) or works again (null). */
  onRotationError?: ((err: Error | null) => void) | undefined;
  /** A file was rotated; `head` is its last line. Awaited before pruning (the checkpoint that keeps pruned lines provable). */
  onRotated?: ((head: ChainHead) => Promise<void>) | undefined;
  /** The serialised `recovered` line for torn bytes kept aside (torn-tail.ts), as the writer serialises its lines. */
  recoveredBody: (recovered: RecoveredBytes) => string;
  /** Hears each torn last line a batch kept aside, once its `recovered` line is in the log (settle() returns its own). */
  onRecovered?: ((recovered: RecoveredBytes) => void) | undefined;
}

/** What a writer found when it settled the log's tail at open (settle()). */
export interface SettledLog {
  /** The chain head after settling: where the next line goes on. */
  head: ChainHead;
  /** The last line the log's files hold (live, else the newest rotated one); seq 0 when none. */
  logEnd: ChainHead;
  /** The head file as it was read. */
  headFile: HeadState;
  /** A torn last line kept aside and recorded, if there was one. */
  recovered: RecoveredBytes | null;
}

/** The chain head to continue from, and what it was chosen among. */
interface FoundHead {
  head: ChainHead;
  /** Where an unterminated tail (a torn last line) starts, or null. */
  tornAt: number | null;
  logEnd: ChainHead;
  headFile: HeadState;
}

/** Where this writer left the file: if it is unchanged, the cached head is still the chain's head. */
interface Known {
  dev: number;
  ino: number;
  size: number;
  head: ChainHead;
}

// A write-ahead hold (append-now.ts) ends after this long, busy or idle, so that another process
// waiting for the lock gets a turn (the writer then leaves it free a moment: writer.ts): 50 ms on a
// log only this process was seen writing (a command-line write waits up to 7 s for its turn), 10 ms
// where another wrote within SHARED_WITHIN_MS (workers, replicas sharing a home).
const MAX_HOLD_MS = 50;
const SHARED_HOLD_MS = 10;
const SHARED_WITHIN_MS = 1_000;

// Lines already written by another process are found by reading back this many lines at most;
// more than one covers a torn last line left by a crash.
const TAIL_LINES = 8;

export class LogFiles {
  readonly #path: string;
  readonly #headPath: string;
  readonly #headKey: Buffer;
  readonly #lockOptions: FileLockOptions;
  readonly #maxBytes: number;
  readonly #onRetention: LogFilesOptions['onRetention'];
  readonly #onRotationError: LogFilesOptions['onRotationError'];
  readonly #onRotated: LogFilesOptions['onRotated'];
  readonly #recoveredBody: LogFilesOptions['recoveredBody'];
  readonly #onRecovered: LogFilesOptions['onRecovered'];
  readonly #pruner: Pruner;
  #hold: RetentionHold | null = null;
  #rotationError: Error | null = null;
  #known: Known | null = null;
  /** The last line this writer appended; kept when the cache is dropped, so a truncation shows. */
  #lastWritten: ChainHead | null = null;
  /** How many of the current batch's lines are already in the log (a failure after a rotation). */
  #committed = 0;
  #releasedAt = -Infinity;
  /** The lock and the live file held across back-to-back write-ahead batches (append-now.ts). */
  #held: HeldLog | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  /** The last hold ended at MAX_HOLD_MS (busy), not because the writer went idle. */
  #heldToTheLimit = false;
  #sharedAt = -Infinity;

  constructor(opts: LogFilesOptions) {
    this.#path = opts.path;
    this.#headPath = opts.headPath;
    this.#headKey = opts.headKey;
    this.#maxBytes = opts.maxBytes;
    this.#pruner = new Pruner(opts);
    this.#onRetention = opts.onRetention;
    this.#onRotationError = opts.onRotationError;
    this.#onRotated = opts.onRotated;
    this.#recoveredBody = opts.recoveredBody;
    this.#onRecovered = opts.onRecovered;
    this.#lockOptions = {
      // A holder that died frees the lock after this long.
      staleMs: 5000,
      // Batches hold the lock for a stat and one append, so waits are short: the shared policy's
      // short polls land in the holder's LOCK_GAP_MS pause (writer.ts) within a few tries. Longer
      // than staleMs all the same: a process that died holding it (a worker killed mid-batch) frees
      // it after staleMs, and a shorter wait would fail every other writer's batch meanwhile, which
      // refuses injected requests until the next one succeeds (as the store's lock: lock.ts).
      waitMs: 7000,
      // A compromised lock means we stalled past `staleMs` and another process may have appended:
      // forget the cached head so the next batch reads the real one.
      onCompromised: () => {
        this.#known = null;
      },
    };
  }

  /** The last rotation or pruning failure, if the latest attempt failed (null once one succeeds). */
  get rotationError(): Error | null {
    return this.#rotationError;
  }

  /** Files min_retention kept past `keep` at the last rotation; null when none. */
  get retentionHold(): RetentionHold | null {
    return this.#hold;
  }

  /** How many lines of the last batch reached the log; after a failure, the ones not to keep. */
  get committed(): number {
    return this.#committed;
  }

  /** The live file's size after this writer's last append, while the cached head is trusted. */
  get knownSize(): number | undefined {
    return this.#known?.size;
  }

  /** When (performance.now()) a batch last found lines another process had appended since this writer's last. */
  get sharedAt(): number {
    return this.#sharedAt;
  }

  /** When (performance.now()) this writer last released the lock. */
  get releasedAt(): number {
    return this.#releasedAt;
  }

  /** Drop the cached head: the next batch reads the file (after a failure, or a change seen outside). */
  forget(): void {
    this.endHold();
    this.#known = null;
  }

  /** The last hold ran its MAX_HOLD_MS: the next should leave the lock free for a moment first. */
  get heldToTheLimit(): boolean {
    return this.#heldToTheLimit;
  }

  /** A write-ahead hold is on: the next batch appends at once. */
  get holding(): boolean {
    return this.#held !== null;
  }

  /** Gives the lock and the file back if they are held (idle, at the hold's limit, before the async path, at close). */
  endHold(): void {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#held === null) return;
    this.#held.end();
    this.#held = null;
    this.#releasedAt = performance.now();
  }

  /** How long a hold may last: short where another process was seen writing within the last second. */
  #maxHoldMs(): number {
    return performance.now() - this.#sharedAt < SHARED_WITHIN_MS ? SHARED_HOLD_MS : MAX_HOLD_MS;
  }

  /**
   * A write-ahead batch, synchronously, under a hold taken now or kept from the last batch; undefined
   * when there is none to be had (the lock taken, the file moved) or a rotation is due.
   */
  #appendHeld(bodies: readonly string[], take: boolean): ChainHead | undefined {
    if (this.#held === null) {
      if (!take || this.#known === null) return undefined;
      const known = { dev: this.#known.dev, ino: this.#known.ino, size: this.#known.size, head: this.#known.head };
      this.#held =
        HeldLog.take(known, {
          path: this.#path,
          staleMs: this.#lockOptions.staleMs,
          onCompromised: () => {
            this.#known = null;
          },
        }) ?? null;
      if (this.#held === null) return undefined;
      // One timer per hold, not one per batch: a loop turn under load can take longer than any
      // idle timeout would, and re-arming a timer per batch costs more than the batch's write.
      this.#idleTimer = setTimeout(() => {
        this.endHold();
        this.#heldToTheLimit = true;
      }, this.#maxHoldMs());
      this.#idleTimer.unref();
    }
    const held = this.#held;
    let now: ReturnType<HeldLog['append']>;
    try {
      now = held.append(bodies, this.#maxBytes);
    } catch (err) {
      this.forget();
      throw err;
    }
    if (now === 'rotate') {
      this.endHold();
      return undefined;
    }
    // What the cache says of the file is not what the path leads to now: read the log afresh, as
    // after a failure (and not as another process's lines, which would shorten holds for a second).
    if (now === 'moved') {
      this.forget();
      return undefined;
    }
    this.#known = now;
    this.#lastWritten = now.head;
    this.#committed = bodies.length;
    if (performance.now() - held.takenAt >= this.#maxHoldMs()) {
      this.endHold();
      this.#heldToTheLimit = true;
    }
    return now.head;
  }

  /**
   * A batch appended synchronously under the hold already on (writer.ts, a request alone): the new
   * chain head, or undefined when there is no hold, a rotation is due or the path moved (the hold
   * ends; the async path takes over). Throws as appendUnderLock rejects, the file cut back.
   */
  appendHeldNow(bodies: readonly string[]): ChainHead | undefined {
    this.#committed = 0;
    return this.#appendHeld(bodies, false);
  }

  /**
   * Take the lock, append `bodies` as chained lines, release. Returns the new chain head.
   * `recreateFolder`: after a failure, the log's folder may be what went missing (someone cleared logs/).
   */
  async appendUnderLock(bodies: readonly string[], recreateFolder: boolean, urgent = false): Promise<ChainHead> {
    this.#committed = 0;
    // The synchronous fast path: batches a request waits on (audit.write_ahead), and any batch while
    // their hold lasts (the async path would wait on our own lock).
    if (!recreateFolder) {
      const head = this.#appendHeld(bodies, urgent);
      if (head !== undefined) return head;
    }
    this.endHold();
    if (recreateFolder) await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 }).catch(() => undefined);
    const release = await acquireFileLock(this.#path, this.#lockOptions);
    try {
      return await this.#append(bodies);
    } finally {
      // A failed release (lock already taken over as stale) does not undo an append that succeeded.
      await release();
      this.#releasedAt = performance.now();
    }
  }

  async #append(bodies: readonly string[]): Promise<ChainHead> {
    let fh = await open(this.#path, 'a+', 0o600);
    try {
      let st = await fh.stat();
      const known = this.#known;
      const unchanged = known !== null && known.dev === st.dev && known.ino === st.ino && known.size === st.size;
      if (known !== null && !unchanged) this.#sharedAt = performance.now();
      this.#known = null;
      const found = unchanged ? { head: known.head, size: st.size } : await this.#settleTail(fh, st.size);
      if ('recovered' in found && found.recovered !== null) this.#onRecovered?.(found.recovered);
      let { seq, hash } = found.head;
      let size = found.size;
      let text = '';
      let textBytes = 0;
      let rotationFailed = false;
      let inText = 0;
      this.#committed = 0;
      for (const body of bodies) {
        const sealed = sealLine(body, seq + 1, hash);
        const bytes = Buffer.byteLength(sealed.line);
        // Rotate before a line would pass the limit; a file always takes at least one line.
        if (this.#maxBytes > 0 && !rotationFailed && size + textBytes > 0 && size + textBytes + bytes > this.#maxBytes) {
          if (textBytes > 0) await appendOrUndo(fh, text, size);
          this.#lastWritten = { seq, hash };
          this.#committed += inText;
          inText = 0;
          text = '';
          textBytes = 0;
          await fh.close();
          // If it fails, the rest of this batch goes on into the same file; the next batch retries.
          rotationFailed = !(await this.#rotate({ seq, hash }));
          fh = await open(this.#path, 'a+', 0o600);
          st = await fh.stat();
          size = st.size;
        }
        seq += 1;
        hash = sealed.hash;
        text += sealed.line;
        textBytes += bytes;
        inText += 1;
      }
      // One append on an O_APPEND handle: the lines land together after whatever is there now.
      if (textBytes > 0) await appendOrUndo(fh, text, size);
      this.#known = { dev: st.dev, ino: st.ino, size: size + textBytes, head: { seq, hash } };
      this.#lastWritten = { seq, hash };
      return { seq, hash };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * At a writer's open, under the lock: the chain head (a torn last line kept aside and recorded
   * first), what the log's files and the head file each said, and the cache set for the first batch.
   */
  async settle(): Promise<SettledLog> {
    this.endHold();
    const release = await acquireFileLock(this.#path, this.#lockOptions);
    try {
      const fh = await open(this.#path, 'a+', 0o600);
      try {
        const st = await fh.stat();
        const found = await this.#findHead(fh, st.size);
        const settled = await this.#settleTail(fh, st.size, found);
        this.#known = { dev: st.dev, ino: st.ino, size: settled.size, head: settled.head };
        this.#lastWritten = settled.head;
        return { head: settled.head, logEnd: found.logEnd, headFile: found.headFile, recovered: settled.recovered };
      } finally {
        await fh.close().catch(() => undefined);
      }
    } finally {
      await release();
      this.#releasedAt = performance.now();
    }
  }

  /**
   * The head to append after, found in the file (see #findHead), with a torn last line kept aside
   * and replaced by its `recovered` line (torn-tail.ts): the batch then follows whole lines only.
   * `size`: where the file now ends.
   */
  async #settleTail(fh: FileHandle, size: number, given?: FoundHead): Promise<{ head: ChainHead; size: number; recovered: RecoveredBytes | null }> {
    const found = given ?? (await this.#findHead(fh, size));
    if (found.tornAt === null) return { head: found.head, size, recovered: null };
    const seq = found.head.seq + 1;
    const recovered = await keepAside(fh, this.#path, found.tornAt, size, seq);
    const sealed = sealLine(this.#recoveredBody(recovered), seq, found.head.hash);
    const end = await replaceTail(fh, this.#path, found.tornAt, size, sealed.line);
    const head = { seq, hash: sealed.hash };
    this.#lastWritten = head;
    return { head, size: end, recovered };
  }

  /**
   * Move the live file to its rotated name and delete files past `keep`. Runs under the lock.
   * `head` is the file's last line. Failures are kept in rotationError and do not fail the lines.
   */
  async #rotate(head: ChainHead): Promise<boolean> {
    try {
      const first = await firstChainedLine(this.#path);
      await rotateFile(this.#path, first?.seq ?? head.seq);
    } catch (err) {
      this.#setRotationError(err);
      return false;
    }
    await this.#onRotated?.(head);
    try {
      this.#setHold(await this.#pruner.prune());
      this.#setRotationError(null);
    } catch (err) {
      this.#setRotationError(err);
    }
    return true;
  }

  /** Kept for /readyz; heard (the app log) when it starts or ends, not at every failed attempt. */
  #setRotationError(err: unknown): void {
    const was = this.#rotationError;
    this.#rotationError = err === null ? null : err instanceof Error ? err : new Error(String(err));
    if ((was === null) !== (this.#rotationError === null)) this.#onRotationError?.(this.#rotationError);
  }

  #setHold(hold: RetentionHold | null): void {
    const was = this.#hold;
    this.#hold = hold;
    if ((was === null) !== (hold === null) || (was !== null && hold !== null && was.files !== hold.files)) this.#onRetention?.(hold);
  }

  /**
   * The head to continue from when another process (or someone else) changed the file: the highest
   * of the file's last chained line, the authenticated head file, and what this writer itself last
   * wrote. Taking the highest means a truncated or replaced log continues with a seq gap that verify
   * reports, instead of reusing numbers and hiding what was removed. Bytes after the last newline
   * (a torn last line) are no line of the chain, even if they parse: the append that wrote them
   * never finished, so nothing was told they were written.
   */
  async #findHead(fh: FileHandle, size: number): Promise<FoundHead> {
    const candidates: ChainHead[] = [{ seq: 0, hash: GENESIS_HASH }];
    if (this.#lastWritten !== null) candidates.push(this.#lastWritten);
    const tornAt = await tornTailAt(fh, size);
    const whole = tornAt ?? size;
    const tail = await readLastLines(fh, whole, TAIL_LINES);
    let logEnd: ChainHead | null = null;
    for (const text of tail.lines.toReversed()) {
      const line = parseLine(text);
      if (line !== null) {
        logEnd = { seq: line.seq, hash: line.hash };
        break;
      }
    }
    // A fresh live file (another process just rotated, or a crash between rotating and appending):
    // the chain goes on from the newest rotated file.
    if (logEnd === null) {
      const last = await lastRotatedLine(this.#path).catch(() => null);
      if (last !== null) logEnd = { seq: last.seq, hash: last.hash };
    }
    if (logEnd !== null) candidates.push(logEnd);
    const headFile: HeadState = await readHead(this.#headPath, this.#headKey).catch(() => ({ kind: 'unreadable' as const }));
    if (headFile.kind === 'ok') candidates.push(headFile.head);
    const head = candidates.reduce((best, c) => (c.seq > best.seq ? c : best));
    return { head, tornAt, logEnd: logEnd ?? { seq: 0, hash: GENESIS_HASH }, headFile };
  }
}
