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
// Rotation (../files.ts, log-files.ts): with `maxBytes`, a line that would take the live file past it
// first moves the file to its rotated name, inside the same lock hold, so every process sees either
// the old file or the new one, and the chain (seq, prev) simply continues in the new file.
//
// Faults (disk full, the file or its folder gone or replaced) are the batch queue's (../batch-queue.ts):
// the writer turns unhealthy, the lines are kept and lead the next batch, and a probe every PROBE_MS
// brings keyway back on its own. A failed append is cut back to where it started, so a half-written
// line (a write stopped by RLIMIT_FSIZE) never stays in the log.
//
// A crash mid-append leaves a torn last line: the writer that next holds the lock (at open, or any
// batch after) keeps its bytes aside and records them with a `recovered` line (torn-tail.ts). At open
// the head file is also sealed at the log's end, so a kill before the first batch's head write
// leaves a log verify vouches for (open-findings.ts says what open found).
//
// A full disk is seen before it fails anything: room.ts keeps an account of the room left (free space,
// the file-size limit) and of what is promised out of it; an injected request must reserve its line
// (reserveLine) and the writer reports unhealthy once there is not room enough for one more.

import { mkdir, open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import { BatchQueue, nextTurn, QueuedAuditLog } from '../batch-queue.ts';
import { prunedPathFor } from '../pruned.ts';
import type { ChainHead } from '../head.ts';
import { KeptLines } from '../kept-lines.ts';
import type { RetentionHold } from '../retention.ts';
import type { AuditEvent } from '../record.ts';
import type { AuditLog } from '../sink.ts';
import { ignoreFileSizeSignal } from './append.ts';
import { HeadPublisher } from './head-publisher.ts';
import { LogFiles, type SettledLog } from './log-files.ts';
import { recoveredEvent, type RecoveredBytes } from './torn-tail.ts';
import { serializeEvent } from '../record.ts';
import { writeHead } from '../head.ts';
import type { WriteFailures } from '../failure-log.ts';
import { watchLogPath, type LogWatch } from './watch.ts';
import { AuditRoom, costOf, lineCost } from './room.ts';
import type { CheckpointSigner } from '../checkpoints/signer.ts';

export interface AuditWriterOptions {
  path: string;
  headPath: string;
  /** HMAC key for the head file; keep it where the log's readers cannot write (the store). */
  headKey: Buffer;
  /** Rotate the live file before a line would take it past this many bytes. Unset or 0: never. */
  maxBytes?: number | undefined;
  /** How many rotated files to keep; older ones are deleted. Default 10. */
  keep?: number | undefined;
  /**
   * A rotated file last written less than this many ms ago is not deleted, even past `keep`
   * (audit.min_retention). Unset or 0: off (the config's default is not: see config/schema/config.ts).
   */
  minRetentionMs?: number | undefined;
  /** Hears when min_retention starts or stops keeping files past `keep`, or keeps a different number. */
  onRetention?: ((hold: RetentionHold | null) => void) | undefined;
  /** Hears when rotation starts failing (the error) or works again (null). */
  onRotationError?: ((err: Error | null) => void) | undefined;
  /** Where pruning records the last deleted line; default beside the head file (prunedPathFor). */
  prunedPath?: string | undefined;
  /** Hears how long each batch took to append (lock, append, unlock) and whether it reached the file. */
  onBatch?: ((seconds: number, ok: boolean) => void) | undefined;
  /** Written as `replica` on every line: which keyway it was, when replicas share one store. */
  replica?: string | undefined;
  /** Signs checkpoints of the chain head (../checkpoints/): at rotation, on its timer, at close. */
  checkpoints?: CheckpointSigner | undefined;
  /**
   * Hears what open() found of the log (open-findings.ts says what deserves a word): a torn last
   * line kept aside, a head file missing or ahead of the log; or the error that kept it from looking.
   */
  onOpen?: ((found: SettledLog | Error) => void) | undefined;
  /** Hears every write refused and the log's recovery (failure-log.ts: the app log, at a bounded rate). */
  failures?: WriteFailures | undefined;
  /** Hears each torn last line kept aside (at open, or found later under a batch: a sibling process killed mid-append). */
  onRecovered?: ((recovered: RecoveredBytes) => void) | undefined;
}

export const DEFAULT_AUDIT_KEEP = 10;

// How long the lock stays free after each batch before this writer takes it again (see
// #pauseBeforeBatch). It also makes batches: on sequential traffic a batch per request (lock, stat,
// append, unlock) cost ~0.3 ms at p50 on the next request (npm run bench, s1); with 10 ms between
// batches a line reaches the file at most ~10 ms after its response ended.
// (proxy.workers has no writer per worker: the primary writes their lines, app/workers/shared-audit.ts.)
const LOCK_GAP_MS = 10;
// How long, under a write-ahead hold, lines nobody waits on wait for a write-ahead line to share its
// append (#waitForWriteAhead): at most this long after their response ends, on a log this process holds.
const RIDE_ALONG_MS = 1;

// A batch a request waits on (write-ahead) goes at once on a log no other process writes; where
// another appended within SHARED_WITHIN_MS, after a gap of URGENT_GAP_MS since
// our last release, which the file lock's 1-4 ms retries of a waiting sibling can land in.
const URGENT_GAP_MS = 4;
// After a write-ahead hold ran to its limit (log-files.ts), on a log no other process is seen writing.
const BUSY_GAP_MS = 1;
// How often write-ahead batches start a fresh look at the room left (room.ts also looks every 100 ms).
const URGENT_REFRESH_MS = 50;
const SHARED_WITHIN_MS = 1_000;

// While unhealthy: how often the kept lines are retried (which is also the health probe).
const PROBE_MS = 100;

export class AuditWriter extends QueuedAuditLog<string, ChainHead> implements AuditLog {
  readonly #path: string;
  readonly #replica: string | undefined;
  readonly #files: LogFiles;
  protected override readonly queue: BatchQueue<string, ChainHead>;
  readonly #heads: HeadPublisher;
  #watch: LogWatch | null = null;
  readonly #room: AuditRoom;
  readonly #checkpoints: CheckpointSigner | undefined;
  #urgentRefreshAt = -Infinity;
  /** The timer of a batch waiting for the next write-ahead line (#waitForWriteAhead). */
  #rideAlong: ReturnType<typeof setTimeout> | undefined = undefined;
  readonly #opts: AuditWriterOptions;

  private constructor(opts: AuditWriterOptions) {
    super();
    this.#opts = opts;
    this.#path = opts.path;
    this.#replica = opts.replica;
    const maxBytes = opts.maxBytes ?? 0;
    this.#files = new LogFiles({
      path: opts.path,
      headPath: opts.headPath,
      headKey: opts.headKey,
      maxBytes,
      keep: opts.keep ?? DEFAULT_AUDIT_KEEP,
      minRetentionMs: opts.minRetentionMs ?? 0,
      onRetention: opts.onRetention,
      onRotationError: opts.onRotationError,
      prunedPath: opts.prunedPath ?? prunedPathFor(opts.headPath),
      onRotated: opts.checkpoints === undefined ? undefined : (head) => opts.checkpoints!.rotated(head),
      recoveredBody: (recovered) => serializeEvent(recoveredEvent(recovered), opts.replica),
      onRecovered: opts.onRecovered,
    });
    this.#checkpoints = opts.checkpoints;
    this.queue = new BatchQueue<string, ChainHead>(
      {
        pause: () => this.#pauseBeforeBatch(),
        pauseUrgent: () => this.#pauseBeforeUrgentBatch(),
        // Fresh figures before each append: a limit or a disk that shrank turns health off now, not
        // after the append fails. (The lines go on regardless: they were promised their room.)
        // A batch a request waits on (write-ahead) does not wait for them: that request's room was
        // reserved already, and the figures arrive a moment later for the next (refresh is shared).
        prepare: (urgent) => {
          if (!urgent && !this.#files.holding) return this.#room.refresh();
          this.#refreshNowAndThen();
          return undefined;
        },
        append: (kept, batch, healthy, urgent) => this.#files.appendUnderLock(kept.before(batch), !healthy, urgent),
        appendNow: (batch) => this.#appendAlone(batch),
        appended: (bodies, head, wasHealthy) => {
          this.#room.appended(costOf(bodies), this.#files.knownSize);
          if (!wasHealthy) this.#armWatch(); // the folder may be a new one: watch what is there now
          this.#heads.publish(head);
          this.#checkpoints?.seen(head);
        },
        failed: (bodies, err) => this.#failed(bodies, err),
        dropped: (body) => this.#room.settled(lineCost(body)),
      },
      { kept: new KeptLines(), probeMs: PROBE_MS, onBatch: opts.onBatch, failures: opts.failures },
    );
    this.#heads = new HeadPublisher(opts.headPath, opts.headKey, () => this.queue.closed);
    this.#room = new AuditRoom(opts.path, maxBytes);
  }

  /** Create the log's folder and file (0600) if missing. Fails with audit_invalid if it cannot. */
  static async open(opts: AuditWriterOptions): Promise<AuditWriter> {
    if (opts.headKey.length === 0) throw new KeywayError('audit_invalid', 'audit head key is empty');
    if (opts.maxBytes !== undefined && (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0)) {
      throw new KeywayError('audit_invalid', 'audit maxBytes must be a whole number of bytes');
    }
    if (opts.minRetentionMs !== undefined && !(opts.minRetentionMs >= 0)) {
      throw new KeywayError('audit_invalid', 'audit minRetentionMs must be 0 or more');
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
    await writer.#settle(opts);
    await writer.#room.refresh();
    writer.#room.start();
    writer.#armWatch();
    return writer;
  }

  /**
   * Before the first line: a torn last line kept aside and recorded (torn-tail.ts), and the head
   * file sealed at the log's end, so a kill before the first batch's head write leaves a log verify
   * vouches for. Not fatal: a log that cannot be settled now (a full disk, the lock held past its
   * wait) is settled by the first batch that reaches it, as any other fault.
   */
  async #settle(opts: AuditWriterOptions, onOpen = opts.onOpen): Promise<void> {
    let settled: SettledLog;
    try {
      settled = await this.#files.settle();
    } catch (err) {
      this.#files.forget();
      onOpen?.(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    onOpen?.(settled);
    // Sealed only where the file says less than the log holds, or is missing: a head file that
    // does not authenticate is left for verify to name (the first batch replaces it).
    const { headFile, head } = settled;
    const behind = headFile.kind === 'ok' ? headFile.head.seq < head.seq : headFile.kind === 'missing';
    if (behind) await writeHead(opts.headPath, opts.headKey, head).catch(() => undefined);
    if (settled.recovered !== null) this.#checkpoints?.seen(head);
  }

  /**
   * The last rotation or pruning failure, if the latest attempt failed (null once one succeeds).
   * A failed rotation never fails the lines: they go on into the live file, past maxBytes.
   */
  get rotationError(): Error | null {
    return this.#files.rotationError;
  }

  /** Rotated files min_retention keeps past `keep`, as of the last rotation; null when none. */
  get retentionHold(): RetentionHold | null {
    return this.#files.retentionHold;
  }

  /**
   * False after a batch failed to reach the file, or while there is not room enough for one more
   * injected request's line; true again once a later batch (or probe) succeeds and room is back.
   */
  get healthy(): boolean {
    return this.queue.healthy && this.#room.roomy;
  }

  get medium(): 'file' {
    return 'file';
  }

  /**
   * Promise the line of a request about to be injected; false (refuse it) when the writer is unhealthy
   * or the room for it cannot be guaranteed. Synchronous: arithmetic on figures refreshed elsewhere.
   * Every true must be followed by one write(event, true), which gives the promise back.
   */
  reserveLine(): boolean {
    return this.queue.writable && this.#room.reserve();
  }

  /**
   * A request's write-ahead line (phase sent): null once it is appended to the file, which a request
   * that is alone gets before this returns (#appendAlone); else write()'s promise.
   */
  writeAhead(event: AuditEvent): Promise<void> | null {
    const body = this.#admit(event, false);
    return typeof body === 'string' ? this.queue.pushAhead(body) : this.queue.refuse(body);
  }

  /**
   * Queue one line. Resolves once it is appended to the file (not fsynced); rejects with
   * audit_unavailable if it could not be, so the caller can refuse to forward the request.
   */
  write(event: AuditEvent, reserved = false): Promise<void> {
    const body = this.#admit(event, reserved);
    return typeof body === 'string' ? this.queue.push(body, event.phase === 'sent') : this.queue.refuse(body);
  }

  /** write() for a line nobody waits for: a failure is reported by the queue (failure-log.ts), not returned. */
  record(event: AuditEvent, reserved = false): void {
    const body = this.#admit(event, reserved);
    if (typeof body === 'string') this.queue.pushUnawaited(body, event.phase === 'sent');
    else this.queue.refuseUnawaited(body);
  }

  /**
   * A line another process serialised (a worker's, app/workers/shared-audit.ts): queued as write()
   * queues its own. `promised`: its room was promised out of the worker's reservations, which
   * setOutsideReservations counts; `urgent`: a request waits on it (its write-ahead line).
   */
  writeBody(body: string, urgent: boolean, promised: boolean): Promise<void> {
    if (this.queue.closed) return this.queue.refuse(new ProxyError('audit_unavailable', 'the audit writer is closed'));
    const admitted = this.#admitBody(body, promised);
    return typeof admitted === 'string' ? this.queue.push(admitted, urgent) : this.queue.refuse(admitted);
  }

  /** Injected requests promised a line and not yet written: this process's, and its workers' (setOutsideReservations). */
  get promisedLines(): number {
    return this.#room.promisedLines;
  }

  /** The injected requests other processes that hand their lines here have in flight, each promised a line. */
  setOutsideReservations(lines: number): void {
    this.#room.setOutside(lines);
  }

  /** The line's text with its room taken, or the error its write is refused with. */
  #admit(event: AuditEvent, reserved: boolean): string | ProxyError {
    if (reserved) this.#room.release();
    const body = this.queue.bodyOf(event, this.#replica);
    return typeof body === 'string' ? this.#admitBody(body, reserved) : body;
  }

  /** `body` with its room taken, or the error its write is refused with. */
  #admitBody(body: string, promised: boolean): string | ProxyError {
    const cost = lineCost(body);
    // A line nobody reserved (a refusal, a tunnel) never takes room promised to an injected request.
    if (!promised && !this.#room.fits(cost)) {
      this.queue.countDrop();
      return new ProxyError('audit_unavailable', 'no room left in the audit log for this line');
    }
    this.#room.queued(cost);
    return body;
  }

  /** Stop accepting writes, wait for queued lines (one last try for the kept ones) and the last head update. */
  async close(): Promise<void> {
    this.#watch?.close();
    this.#room.stop();
    await this.queue.close();
    this.#files.endHold();
    await this.#heads.settled();
    // Each writer publishes its own head, so the last of several to close (workers, the CLI beside
    // a proxy) may have written one behind another's lines: sealed at the log's end, under the lock,
    // a stop leaves no line past the head. Not on a log that is failing (the lock would be waited for).
    if (this.queue.healthy) await this.#settle(this.#opts, undefined);
    await this.#checkpoints?.close();
  }

  /**
   * Let the rest of this event-loop turn queue its writes so they share the batch, and leave the lock
   * free for LOCK_GAP_MS after our last release. proper-lockfile has no queue of waiters: a process
   * that relocks at once, batch after batch, starves the others until their retries run out. The
   * pause costs no throughput under load, because the writes that arrive during it join the batch.
   */
  async #pauseBeforeBatch(): Promise<void> {
    if (this.#files.holding) return this.#waitForWriteAhead();
    const wait = this.#files.releasedAt + LOCK_GAP_MS - performance.now();
    if (wait > 0) await sleep(wait);
    else await nextTurn();
  }

  /**
   * Under a write-ahead hold, a batch of lines nobody waits on (responses' outcomes) waits up to
   * RIDE_ALONG_MS for the next write-ahead line, which cuts the pause short (the queue's wake, then
   * #pauseBeforeUrgentBatch clears the timer) and takes them in its own append. On sequential
   * traffic that is one batch per request instead of two, and the outcome's batch no longer runs
   * between a response and the next request (docs/perf/breakdown.md, fourteenth pass).
   */
  #waitForWriteAhead(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#rideAlong = setTimeout(() => {
        this.#rideAlong = undefined;
        resolve();
      }, RIDE_ALONG_MS);
    });
  }

  /** The outcome lines waiting for a write-ahead line go with it: their timer would only wake the loop. */
  #endRideAlong(): void {
    if (this.#rideAlong === undefined) return;
    clearTimeout(this.#rideAlong);
    this.#rideAlong = undefined;
  }

  /**
   * Before a batch a request waits on (its write-ahead line): at once, unless another process has
   * appended to the log within the last second. Then the lock is left free for a short gap after our
   * last release (URGENT_GAP_MS, not the usual gap), so a sibling gets its turn while ours wait little.
   */
  async #pauseBeforeUrgentBatch(): Promise<void> {
    this.#endRideAlong();
    const now = performance.now();
    const files = this.#files;
    const shared = now - files.sharedAt < SHARED_WITHIN_MS;
    // A hold that ran to its limit leaves the lock free for a moment even on a log nobody else
    // writes: a process that does not write often (the CLI) must find its turn too.
    const gap = shared ? URGENT_GAP_MS : files.heldToTheLimit ? BUSY_GAP_MS : 0;
    const wait = files.holding ? 0 : files.releasedAt + gap - now;
    if (wait > 0) await sleep(wait);
    else await nextTurn();
  }

  /**
   * A write-ahead line's batch, appended before the request goes on (BatchQueue.pushAhead), when its
   * request is the only injected one in flight (its own promised line: this process's and its
   * workers') and the log is held (log-files.ts). A request that is not alone goes through the queue,
   * whose turn lets the lines of requests read together share one append. Undefined: not now.
   */
  #appendAlone(batch: readonly string[]): ChainHead | undefined {
    if (!this.#files.holding || this.#room.promisedLines > 1) return undefined;
    const head = this.#files.appendHeldNow(batch);
    if (head === undefined) return undefined;
    this.#endRideAlong();
    this.#refreshNowAndThen();
    return head;
  }

  /**
   * A fresh look at the room left, at most once per URGENT_REFRESH_MS, for write-ahead batches: they
   * come one per turn under load (each look is three file-system calls on the thread pool), and do
   * not wait for it (their request's room was reserved already).
   */
  #refreshNowAndThen(): void {
    const now = performance.now();
    if (now - this.#urgentRefreshAt >= URGENT_REFRESH_MS) {
      this.#urgentRefreshAt = now;
      void this.#room.refresh();
    }
  }

  /** What a failed append leaves: keep what did not reach the log (all of it, unless a rotation part-way had appended some). */
  #failed(bodies: readonly string[], err: unknown): { unwritten: readonly string[]; failure: Error } {
    const committed = this.#files.committed;
    const written = bodies.slice(0, committed);
    if (written.length > 0) this.#room.appended(costOf(written));
    this.#files.forget();
    const failure = new ProxyError('audit_unavailable', `the audit log could not be written (${errCode(err)}); the line is kept and retried`, {
      cause: err,
    });
    return { unwritten: bodies.slice(committed), failure };
  }

  /** Watch the log's path: a file or folder replaced or removed turns the writer unhealthy without traffic (watch.ts). */
  #armWatch(): void {
    this.#watch?.close();
    this.#watch = null;
    if (this.queue.closed) return;
    this.#watch = watchLogPath(this.#path, () => {
      if (this.queue.closed) return;
      this.#files.forget();
      // Check at once (a probe batch): if the log is in fact writable, health returns within ms.
      this.queue.fault(true);
    });
  }
}

function errCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}
