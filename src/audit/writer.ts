// Appends audit lines to one hash-chained file that several keyway processes may share.
//
// Every write() joins a batch; one batch at a time takes the inter-process lock, finds the chain head,
// appends all its lines with a single write, releases, then publishes the head file. Batching is what
// makes a lock + stat + append per request affordable at thousands of requests per second, and running
// one batch at a time is what keeps lines in the order write() was called.
//
// Nothing is fsynced: an fsync per batch would cap throughput at the disk's flush rate. A process
// crash loses nothing (appended data is in the kernel); a power loss can lose the last unflushed
// lines, and the head file makes that loss visible rather than silent: if the head reached disk
// ahead of the lines, verify reports a removed tail, and the next writer continues from the head
// (leaving a seq gap verify reports) instead of reusing the lost numbers.
//
// Rotation (files.ts): with `maxBytes`, a line that would take the live file past it first moves the
// file to its rotated name, inside the same lock hold, so every process sees either the old file or
// the new one, and the chain (seq, prev) simply continues in the new file.
//
// Faults (disk full, the file or its folder gone or replaced): a failed batch marks the writer
// unhealthy, which makes the proxy refuse every request that would inject (503 audit_unavailable).
// The batch's lines are kept in memory (bounded) and go first into the next batch, so a request that
// was forwarded before the failure showed still gets its line, in order, once the log is writable
// again. While unhealthy, a probe retries every PROBE_MS without waiting for traffic, so keyway
// recovers on its own within about PROBE_MS of the fault clearing. A failed append is cut back to
// where it started, so a half-written line (a write stopped by RLIMIT_FSIZE) never stays in the log.
//
// A full disk is seen before it fails anything: room.ts keeps an account of the room left (free space,
// the file-size limit) and of what is promised out of it; an injected request must reserve its line
// (reserveLine) and the writer reports unhealthy once there is not room enough for one more.

import { mkdir, open, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { lock } from 'proper-lockfile';
import type { LockOptions } from 'proper-lockfile';
import { KeywayError, ProxyError } from '../errors/index.ts';
import { firstChainedLine, lastChainedLine, listRotated, prunedPathFor, readPruned, rotateFile, writePruned } from './files.ts';
import { readHead, writeHead } from './head.ts';
import type { ChainHead } from './head.ts';
import { appendOrUndo, ignoreFileSizeSignal } from './append.ts';
import { readLastLines } from './lines.ts';
import { watchLogPath, type LogWatch } from './watch.ts';
import { AuditRoom, lineCost } from './room.ts';
import { checkEvent, GENESIS_HASH, parseLine, sealLine, serializeEvent } from './record.ts';
import type { AuditEvent } from './record.ts';

export interface AuditWriterOptions {
  path: string;
  headPath: string;
  /** HMAC key for the head file; keep it where the log's readers cannot write (the store). */
  headKey: Buffer;
  /** Rotate the live file before a line would take it past this many bytes. Unset or 0: never. */
  maxBytes?: number | undefined;
  /** How many rotated files to keep; older ones are deleted. Default 10. */
  keep?: number | undefined;
  /** Where pruning records the last deleted line; default beside the head file (prunedPathFor). */
  prunedPath?: string | undefined;
}

export const DEFAULT_AUDIT_KEEP = 10;

interface Pending {
  body: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Where this writer left the file: if it is unchanged, the cached head is still the chain's head. */
interface Known {
  dev: number;
  ino: number;
  size: number;
  head: ChainHead;
}

// Lines already written by another process are found by reading back this many lines at most;
// more than one covers a torn last line left by a crash.
const TAIL_LINES = 8;

// How long the lock stays free after each batch before this writer takes it again (see
// #pauseBeforeBatch). It also makes batches: on sequential traffic a batch per request (lock, stat,
// append, unlock) cost ~0.3 ms at p50 on the next request (npm run bench, s1); with 10 ms between
// batches a line reaches the file at most ~10 ms after its response ended.
const LOCK_GAP_MS = 10;

// How often, at most, the authenticated chain head is rewritten while lines keep coming.
const HEAD_INTERVAL_MS = 250;

// While unhealthy: how often the kept lines are retried (which is also the health probe).
const PROBE_MS = 100;

// How many lines (and bytes) a fault may leave waiting in memory. Past this, newer lines are dropped
// and counted: while unhealthy the proxy injects nothing, so those are refusals; the oldest lines,
// kept, are the ones that may belong to requests forwarded before the fault was seen.
const MAX_KEPT_LINES = 10_000;
const MAX_KEPT_BYTES = 8 * 1024 * 1024;

export class AuditWriter {
  readonly #path: string;
  readonly #headPath: string;
  readonly #headKey: Buffer;
  readonly #lockOptions: LockOptions;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #prunedPath: string;
  #rotationError: Error | null = null;
  #queue: Pending[] = [];
  #drainLoop: Promise<void> | null = null;
  #known: Known | null = null;
  /** The last line this writer appended; kept when the cache is dropped, so a truncation shows. */
  #lastWritten: ChainHead | null = null;
  #healthy = true;
  #releasedAt = -Infinity;
  #closed = false;
  #headLatest: ChainHead | null = null;
  #headLoop: Promise<void> | null = null;
  #headWrittenAt = Number.NEGATIVE_INFINITY;
  /** Lines a failed batch could not write, oldest first; they lead the next batch. */
  #kept: string[] = [];
  #keptBytes = 0;
  #dropped = 0;
  #probeTimer: NodeJS.Timeout | null = null;
  #watch: LogWatch | null = null;
  /** How many of the current batch's lines are already in the log (a failure after a rotation). */
  #committed = 0;
  readonly #room: AuditRoom;

  private constructor(opts: AuditWriterOptions) {
    this.#path = opts.path;
    this.#headPath = opts.headPath;
    this.#headKey = opts.headKey;
    this.#maxBytes = opts.maxBytes ?? 0;
    this.#keep = opts.keep ?? DEFAULT_AUDIT_KEEP;
    this.#prunedPath = opts.prunedPath ?? prunedPathFor(opts.headPath);
    this.#room = new AuditRoom(opts.path, this.#maxBytes);
    this.#lockOptions = {
      realpath: false,
      // A holder that died frees the lock after `stale` ms (the minimum proper-lockfile allows is 2 s).
      stale: 5000,
      // Batches hold the lock for a stat and one append, so waits are short. Polling every few ms
      // (randomised, so processes do not retry in lockstep) lands in the holder's LOCK_GAP_MS pause
      // within a few tries. Gives up after about two seconds.
      retries: { retries: 500, factor: 1.1, minTimeout: 1, maxTimeout: 4, randomize: true },
      // The default throws from a timer and would kill the proxy. A compromised lock means we stalled
      // past `stale` and another process may have appended: forget the cached head so the next batch
      // reads the real one.
      onCompromised: () => {
        this.#known = null;
      },
    };
  }

  /** Create the log's folder and file (0600) if missing. Fails with audit_invalid if it cannot. */
  static async open(opts: AuditWriterOptions): Promise<AuditWriter> {
    if (opts.headKey.length === 0) throw new KeywayError('audit_invalid', 'audit head key is empty');
    if (opts.maxBytes !== undefined && (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0)) {
      throw new KeywayError('audit_invalid', 'audit maxBytes must be a whole number of bytes');
    }
    if (opts.keep !== undefined && (!Number.isSafeInteger(opts.keep) || opts.keep < 1)) {
      throw new KeywayError('audit_invalid', 'audit keep must be a whole number, at least 1');
    }
    ignoreFileSizeSignal();
    try {
      await mkdir(dirname(opts.path), { recursive: true, mode: 0o700 });
      await mkdir(dirname(opts.headPath), { recursive: true, mode: 0o700 });
      const fh = await open(opts.path, 'a', 0o600);
      await fh.close();
    } catch (err) {
      throw new KeywayError('audit_invalid', `audit log ${opts.path} cannot be opened for append: ${errCode(err)}`, {
        cause: err,
      });
    }
    const writer = new AuditWriter(opts);
    await writer.#room.refresh();
    writer.#room.start();
    writer.#armWatch();
    return writer;
  }

  /**
   * The last rotation or pruning failure, if the latest attempt failed (null once one succeeds).
   * A failed rotation never fails the lines: they go on into the live file, past maxBytes.
   */
  get rotationError(): Error | null {
    return this.#rotationError;
  }

  /**
   * False after a batch failed to reach the file, or while there is not room enough for one more
   * injected request's line; true again once a later batch (or probe) succeeds and room is back.
   */
  get healthy(): boolean {
    return this.#healthy && this.#room.roomy;
  }

  /**
   * Promise the line of a request about to be injected; false (refuse it) when the writer is unhealthy
   * or the room for it cannot be guaranteed. Synchronous: arithmetic on figures refreshed elsewhere.
   * Every true must be followed by one write(event, true), which gives the promise back.
   */
  reserveLine(): boolean {
    return !this.#closed && this.#healthy && this.#room.reserve();
  }

  /** Lines a fault left waiting in memory, written first once the log can be written again. */
  get keptLines(): number {
    return this.#kept.length;
  }

  /** Lines given up since this writer opened, because too many were waiting during a fault. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /**
   * Queue one line. Resolves once it is appended to the file (not fsynced); rejects with
   * audit_unavailable if it could not be, so the caller can refuse to forward the request.
   */
  write(event: AuditEvent, reserved = false): Promise<void> {
    if (reserved) this.#room.release();
    if (this.#closed) return Promise.reject(new ProxyError('audit_unavailable', 'the audit writer is closed'));
    const invalid = checkEvent(event);
    if (invalid !== null) return Promise.reject(new ProxyError('audit_unavailable', `invalid audit event: ${invalid}`));
    let body: string;
    try {
      body = serializeEvent(event);
    } catch (err) {
      return Promise.reject(new ProxyError('audit_unavailable', 'the audit event cannot be serialised', { cause: err }));
    }
    const cost = lineCost(body);
    // A line nobody reserved (a refusal, a tunnel) never takes room promised to an injected request.
    if (!reserved && !this.#room.fits(cost)) {
      this.#dropped += 1;
      return Promise.reject(new ProxyError('audit_unavailable', 'no room left in the audit log for this line'));
    }
    this.#room.queued(cost);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ body, resolve, reject });
      this.#drainLoop ??= this.#drain();
    });
  }

  /** Stop accepting writes, wait for queued lines and the last head update. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probeTimer !== null) clearTimeout(this.#probeTimer);
    this.#probeTimer = null;
    this.#watch?.close();
    this.#room.stop();
    await this.#drainLoop;
    // Lines a fault left in memory get one last try; if the log is still unwritable they are lost
    // with the process (keptLines says how many).
    if (this.#kept.length > 0) {
      this.#drainLoop = this.#drain(true);
      await this.#drainLoop;
    }
    await this.#headLoop;
  }

  /** `probe`: run one batch even with nothing queued, to retry the kept lines (or just the file). */
  async #drain(probe = false): Promise<void> {
    for (;;) {
      await this.#pauseBeforeBatch();
      const batch = this.#queue;
      const runEmpty = probe;
      probe = false;
      if (batch.length === 0 && !runEmpty) {
        // Cleared in the same synchronous step as the emptiness check, so a write() arriving later
        // always starts a new loop instead of waiting on one that has ended.
        this.#drainLoop = null;
        // A probe that fired while this loop was running (in the pause after a failed batch) left
        // the retry to it; ending unhealthy without a probe pending would stop retries until the
        // next request, and every request is refused meanwhile.
        if (!this.#healthy) this.#scheduleProbe();
        return;
      }
      this.#queue = [];
      await this.#runBatch(batch);
    }
  }

  /**
   * Let the rest of this event-loop turn queue its writes so they share the batch, and leave the lock
   * free for LOCK_GAP_MS after our last release. proper-lockfile has no queue of waiters: a process
   * that relocks at once, batch after batch, starves the others until their retries run out. The
   * pause costs no throughput under load, because the writes that arrive during it join the batch.
   */
  async #pauseBeforeBatch(): Promise<void> {
    const wait = this.#releasedAt + LOCK_GAP_MS - performance.now();
    if (wait > 0) await sleep(wait);
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    let head: ChainHead;
    const kept = this.#kept;
    this.#committed = 0;
    const bodies = [...kept, ...batch.map((p) => p.body)];
    // Fresh figures before each append: a limit or a disk that shrank turns health off now, not
    // after the append fails. (The lines go on regardless: they were promised their room.)
    await this.#room.refresh();
    try {
      head = await this.#appendUnderLock(bodies);
    } catch (err) {
      this.#healthy = false;
      // Keep what did not reach the log (all of it, unless a rotation part-way had appended some).
      const written = bodies.slice(0, this.#committed);
      if (written.length > 0) this.#room.appended(costOf(written));
      this.#known = null;
      const unwritten = bodies.slice(this.#committed);
      this.#kept = [];
      this.#keptBytes = 0;
      this.#keepFailed(unwritten);
      const failure = new ProxyError('audit_unavailable', `the audit log could not be written (${errCode(err)}); the line is kept and retried`, {
        cause: err,
      });
      for (const p of batch) p.reject(failure);
      this.#scheduleProbe();
      return;
    }
    this.#kept = [];
    this.#keptBytes = 0;
    this.#room.appended(costOf(bodies), this.#known?.size);
    if (!this.#healthy) this.#armWatch(); // the folder may be a new one: watch what is there now
    this.#healthy = true;
    for (const p of batch) p.resolve();
    this.#publishHead(head);
  }

  /** Adds a failed batch's lines behind those already kept, up to the bounds; counts the rest. */
  #keepFailed(bodies: string[]): void {
    for (const body of bodies) {
      const bytes = Buffer.byteLength(body);
      if (this.#kept.length >= MAX_KEPT_LINES || this.#keptBytes + bytes > MAX_KEPT_BYTES) {
        this.#dropped += 1;
        this.#room.settled(lineCost(body));
        continue;
      }
      this.#kept.push(body);
      this.#keptBytes += bytes;
    }
  }

  /** Watch the log's folder: a file or folder replaced or removed turns the writer unhealthy at once. */
  #armWatch(): void {
    this.#watch?.close();
    this.#watch = null;
    if (this.#closed) return;
    this.#watch = watchLogPath(this.#path, () => {
      if (this.#closed) return;
      this.#healthy = false;
      this.#known = null;
      // Check at once (a probe batch): if the log is in fact writable, health returns within ms.
      this.#drainLoop ??= this.#drain(true);
      // If a drain loop was already running and ends without a failed batch, this probe follows up.
      this.#scheduleProbe();
    });
  }

  /** While unhealthy, retry without waiting for traffic: no request arrives to retry for us when all are refused. */
  #scheduleProbe(): void {
    if (this.#closed || this.#probeTimer !== null) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = null;
      if (this.#healthy || this.#closed) return;
      // A drain loop already running retries the kept lines with its next batch, or ends and, if
      // that batch fails too, schedules the next probe.
      this.#drainLoop ??= this.#drain(true);
    }, PROBE_MS);
    // A probe never keeps the process alive on its own.
    this.#probeTimer.unref();
  }

  async #appendUnderLock(bodies: string[]): Promise<ChainHead> {
    // After a failure, the log's folder may be what went missing (someone cleared logs/).
    if (!this.#healthy) await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 }).catch(() => undefined);
    const release = await lock(this.#path, this.#lockOptions);
    try {
      return await this.#append(bodies);
    } finally {
      // A failed release (lock already taken over as stale) does not undo an append that succeeded.
      await release().catch(() => undefined);
      this.#releasedAt = performance.now();
    }
  }

  async #append(bodies: string[]): Promise<ChainHead> {
    let fh = await open(this.#path, 'a+', 0o600);
    try {
      let st = await fh.stat();
      const known = this.#known;
      const unchanged = known !== null && known.dev === st.dev && known.ino === st.ino && known.size === st.size;
      const found = unchanged ? { head: known.head, needsNewline: false } : await this.#findHead(fh, st.size);
      let { seq, hash } = found.head;
      let size = st.size;
      // A torn last line (crash mid-append) is left as one unparseable line rather than glued to ours.
      let text = found.needsNewline ? '\n' : '';
      let textBytes = Buffer.byteLength(text);
      this.#known = null;
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
   * Move the live file to its rotated name and delete files past `keep`. Runs under the lock.
   * `head` is the file's last line. Failures are kept in rotationError and do not fail the lines.
   */
  async #rotate(head: ChainHead): Promise<boolean> {
    try {
      const first = await firstChainedLine(this.#path);
      await rotateFile(this.#path, first?.seq ?? head.seq);
    } catch (err) {
      this.#rotationError = err instanceof Error ? err : new Error(String(err));
      return false;
    }
    try {
      await this.#prune();
      this.#rotationError = null;
    } catch (err) {
      this.#rotationError = err instanceof Error ? err : new Error(String(err));
    }
    return true;
  }

  /**
   * Delete rotated files past `keep`, oldest first, after recording (MAC'd) the last line deleted,
   * so verify can tell pruning from a file removed by hand. Files already covered by the record
   * (left by a crash between recording and deleting) are deleted too. A pruned record that does not
   * authenticate is left alone, and nothing is deleted, so verify still reports it.
   */
  async #prune(): Promise<void> {
    const record = await readPruned(this.#prunedPath, this.#headKey);
    if (record.kind === 'bad_mac' || record.kind === 'unreadable') return;
    let baseSeq = record.kind === 'ok' ? record.head.seq : 0;
    const files = await listRotated(this.#path);
    const leftovers = files.filter((f) => f.firstSeq <= baseSeq);
    const live = files.filter((f) => f.firstSeq > baseSeq);
    const doomed = [...leftovers];
    const excess = live.length - this.#keep;
    if (excess > 0) {
      const newest = live[excess - 1]!;
      const last = await lastChainedLine(newest.path);
      if (last !== null && last.seq > baseSeq) {
        await writePruned(this.#prunedPath, this.#headKey, { seq: last.seq, hash: last.hash });
        baseSeq = last.seq;
        doomed.push(...live.slice(0, excess));
      }
    }
    for (const f of doomed) {
      await unlink(f.path).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      });
    }
  }

  /**
   * The head to continue from when another process (or someone else) changed the file: the highest
   * of the file's last chained line, the authenticated head file, and what this writer itself last
   * wrote. Taking the highest means a truncated or replaced log continues with a seq gap that verify
   * reports, instead of reusing numbers and hiding what was removed.
   */
  async #findHead(fh: FileHandle, size: number): Promise<{ head: ChainHead; needsNewline: boolean }> {
    const candidates: ChainHead[] = [{ seq: 0, hash: GENESIS_HASH }];
    if (this.#lastWritten !== null) candidates.push(this.#lastWritten);
    const tail = await readLastLines(fh, size, TAIL_LINES);
    let inFile = false;
    for (const text of tail.lines.toReversed()) {
      const line = parseLine(text);
      if (line !== null) {
        candidates.push({ seq: line.seq, hash: line.hash });
        inFile = true;
        break;
      }
    }
    // A fresh live file (another process just rotated, or a crash between rotating and appending):
    // the chain goes on from the newest rotated file.
    if (!inFile) {
      const rotated = (await listRotated(this.#path).catch(() => [])).at(-1);
      const last = rotated === undefined ? null : await lastChainedLine(rotated.path).catch(() => null);
      if (last !== null) candidates.push({ seq: last.seq, hash: last.hash });
    }
    const stored = await readHead(this.#headPath, this.#headKey).catch(() => ({ kind: 'unreadable' as const }));
    if (stored.kind === 'ok') candidates.push(stored.head);
    const head = candidates.reduce((best, c) => (c.seq > best.seq ? c : best));
    return { head, needsNewline: size > 0 && !tail.endsWithNewline };
  }

  /**
   * Head files are written after the lock is released, to keep the lock short, and one at a time per
   * writer; if several batches finish meanwhile, only the newest head is written. Another process may
   * still replace it with an older head: a head behind the file is valid, it only weakens tail checks
   * until the next batch. A failed head write does not fail the lines, which are already in the log.
   */
  #publishHead(head: ChainHead): void {
    this.#headLatest = head;
    this.#headLoop ??= this.#writeHeads();
  }

  async #writeHeads(): Promise<void> {
    for (let head = this.#headLatest; head !== null; head = this.#headLatest) {
      // At most one head write per HEAD_INTERVAL_MS under load: a head file per batch cost two
      // file operations per request on sequential traffic. The price: a tail cut within the last
      // interval before a crash goes unnoticed by verify. close() writes the final head at once.
      const wait = this.#headWrittenAt + HEAD_INTERVAL_MS - performance.now();
      if (wait > 0 && !this.#closed) await sleep(wait);
      head = this.#headLatest ?? head;
      this.#headLatest = null;
      this.#headWrittenAt = performance.now();
      await writeHead(this.#headPath, this.#headKey, head).catch(() => undefined);
    }
    this.#headLoop = null;
  }
}

function costOf(bodies: readonly string[]): number {
  let cost = 0;
  for (const body of bodies) cost += lineCost(body);
  return cost;
}

function errCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

