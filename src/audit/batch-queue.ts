// The batch queue both audit writers run on (file/writer.ts, table/writer.ts); each brings only its
// store: how a batch is appended, and what a success or a failure means there.
//
// Every write joins a batch; one batch at a time goes to the store, so lines keep the order they were
// written in. A failed batch marks the queue unhealthy, which makes the proxy refuse every request
// that would inject (503 audit_unavailable). The batch's lines are kept in memory (bounded,
// kept-lines.ts) and lead the next batch, so a request forwarded before the failure showed still gets
// its line, in order, once the store can be written again. While unhealthy, a probe retries every
// `probeMs` without waiting for traffic: keyway recovers by itself soon after the fault clears.

import { ProxyError } from '../errors/index.ts';
import type { WriteFailures } from './failure-log.ts';
import type { KeptLines } from './kept-lines.ts';
import { checkEvent, serializeEvent, type AuditEvent } from './record.ts';
import { IGNORE } from './sink.ts';

/** Where the batches go: the log's files, or the audit table. */
export interface BatchStore<T, R> {
  /** Waits before each batch; the writes that arrive meanwhile join it. Default: the next turn (nextTurn). */
  pause?(): Promise<void>;
  /**
   * Waits before a batch that a request is waiting on (an urgent write: a write-ahead line, whose
   * credential leaves only once it is in the store). Default: the next turn. A pause() under way is
   * cut short when an urgent write arrives, and this is waited instead.
   */
  pauseUrgent?(): Promise<void>;
  /** Runs before each batch, outside the time onBatch hears; `urgent`: a request waits on this batch. */
  prepare?(urgent: boolean): Promise<void> | undefined;
  /**
   * Appends the kept lines, then `batch`, in that order; rejects if they did not all reach the store.
   * `kept` is the queue's own: a store may first drop from it lines a doubtful batch did write.
   */
  append(kept: KeptLines<T>, batch: readonly T[], healthy: boolean, urgent: boolean): Promise<R>;
  /** After an append succeeded (`lines`: all it appended), before health returns and the writes resolve. */
  appended?(lines: readonly T[], result: R, wasHealthy: boolean): void;
  /**
   * Appends `batch` before it returns, when the store can do that now (see BatchQueue.pushAhead);
   * undefined, with nothing written, when it cannot (the queue then takes the usual path). Throws
   * as append() rejects. (So only a store whose append gives a result can offer it.)
   */
  appendNow?(batch: readonly T[]): R | undefined;
  /** After an append failed: which of `lines` did not reach the store (they are kept), and what the batch's writes are rejected with. */
  failed(lines: readonly T[], err: unknown): { unwritten: readonly T[]; failure: Error };
  /** Hears each line given up because too many are kept. */
  dropped?(line: T): void;
}

export interface BatchQueueOptions<T> {
  /** Holds the lines failed batches could not write. */
  kept: KeptLines<T>;
  /** While unhealthy: how often the kept lines are retried (which is also the health probe). */
  probeMs: number;
  /** Hears how long each batch took to append and whether it reached the store. */
  onBatch?: ((seconds: number, ok: boolean) => void) | undefined;
  /** Hears every write refused and the store's recovery (failure-log.ts says them at a bounded rate). */
  failures?: WriteFailures | undefined;
}

interface Pending<T> {
  line: T;
  resolve: () => void;
  reject: (err: Error) => void;
  /**
   * A write-ahead line: its request is sent only if the line is in. If its batch fails, the request
   * is refused and the line must never reach the store later (it would record a credential sent
   * that never was), so it is not kept for the retry like the others.
   */
  aheadOfSend: boolean;
}

export class BatchQueue<T, R = void> {
  readonly #store: BatchStore<T, R>;
  readonly #kept: KeptLines<T>;
  readonly #probeMs: number;
  readonly #onBatch: BatchQueueOptions<T>['onBatch'];
  readonly #failures: WriteFailures | undefined;
  #queue: Pending<T>[] = [];
  /** An urgent write is queued: the batch goes without the store's usual pause. */
  #urgent = false;
  /** Ends the pause under way early (an urgent write arrived during it). */
  #wake: (() => void) | null = null;
  #drainLoop: Promise<void> | null = null;
  /** A batch is taken and not yet settled: nothing may be appended beside it. */
  #running = false;
  /** pushAhead took the queued lines during a pause (#pause pauses again for any queued since). */
  #taken = false;
  #healthy = true;
  #closed = false;
  #dropped = 0;
  #probeTimer: NodeJS.Timeout | null = null;

  constructor(store: BatchStore<T, R>, opts: BatchQueueOptions<T>) {
    this.#store = store;
    this.#kept = opts.kept;
    this.#probeMs = opts.probeMs;
    this.#onBatch = opts.onBatch;
    this.#failures = opts.failures;
  }

  /** False from a failed batch (or a fault) until a later batch or probe succeeds. */
  get healthy(): boolean {
    return this.#healthy;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Open and healthy: a line written now is expected to reach the store. */
  get writable(): boolean {
    return !this.#closed && this.#healthy;
  }

  /** Lines a fault left waiting in memory, written first once the store can be written again. */
  get keptLines(): number {
    return this.#kept.count;
  }

  /** Lines not in the store yet: queued for the next batch, or kept through a fault. */
  get pendingLines(): number {
    return this.#queue.length + this.#kept.count;
  }

  /** Lines given up since the queue was made, because too many were waiting during a fault. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** Counts a line given up before it was queued (file/writer.ts: no room left for it). */
  countDrop(): void {
    this.#dropped += 1;
  }

  /** A write refused before it was queued (bodyOf's error, no room): reported, and the rejection to return. */
  refuse(err: Error): Promise<never> {
    this.refuseUnawaited(err);
    return Promise.reject(err);
  }

  /** The serialised line of `event`, or the error its write() rejects with (closed, invalid, unserialisable). */
  bodyOf(event: AuditEvent, replica: string | undefined): string | ProxyError {
    if (this.#closed) return new ProxyError('audit_unavailable', 'the audit writer is closed');
    return eventBody(event, replica);
  }

  /**
   * Queues one line; resolves once its batch reached the store, rejects with the store's failure if
   * not. `urgent`: a request waits on it (write-ahead), so its batch goes at once (group commit:
   * every write queued meanwhile shares that append).
   */
  push(line: T, urgent = false): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#enqueue({ line, resolve, reject, aheadOfSend: urgent }));
  }

  /**
   * Queues one line nobody waits for (a request's outcome): as push, without the promise, its two
   * settling functions and the caller's catch, which every request made and dropped. A failure is
   * still reported (WriteFailures) and the line kept for the retry like any other.
   */
  pushUnawaited(line: T, urgent = false): void {
    this.#enqueue({ line, resolve: IGNORE, reject: IGNORE, aheadOfSend: urgent });
  }

  /**
   * A line a request waits on (write-ahead), appended before this returns when the store can do it
   * at once (appendNow) and nothing stands in the way: no batch under way, nothing kept through a
   * fault. The lines queued before it go first, in the same append, so the order is the order of
   * the calls. Returns null once the line is in the store; otherwise what push(line, true) returns.
   * This spares a request that is alone the queue's turn and promises (docs/perf/breakdown.md,
   * fifteenth pass); requests that come together still share one append through push().
   */
  pushAhead(line: T): Promise<void> | null {
    const appendNow = this.#store.appendNow;
    if (appendNow === undefined || this.#running || !this.#healthy || this.#closed || this.#kept.count > 0) return this.push(line, true);
    const queued = this.#queue;
    // Grown by push, never spread: every list the store seals has the same (packed) shape (kept-lines.ts).
    const items: T[] = [];
    for (const p of queued) items.push(p.line);
    items.push(line);
    const started = performance.now();
    let result: R | undefined;
    try {
      result = appendNow.call(this.#store, items);
    } catch (err) {
      this.#takeQueued();
      const settled = new Promise<void>((resolve, reject) => {
        this.#batchFailed([...queued, { line, resolve, reject, aheadOfSend: true }], items, err, started);
      });
      return settled;
    }
    if (result === undefined) return this.push(line, true);
    this.#takeQueued();
    this.#batchDone(queued, items, result, started);
    return null;
  }

  /** The queued lines were taken by pushAhead's append: a drain loop pausing for them ends, finding none. */
  #takeQueued(): void {
    this.#queue = [];
    this.#urgent = false;
    this.#taken = true;
    this.#wake?.();
  }

  #enqueue(pending: Pending<T>): void {
    this.#queue.push(pending);
    if (pending.aheadOfSend) {
      this.#urgent = true;
      this.#wake?.();
    }
    this.#drainLoop ??= this.#drain();
  }

  /** refuse() for a write nobody waits for: reported, nothing to return. */
  refuseUnawaited(err: Error): void {
    // A write after close (a request ending as keyway stops) is not the log failing.
    if (!this.#closed) this.#failures?.rejected(err, 1);
  }

  /**
   * The store's pause before a batch; cut short by an urgent write, which waits pauseUrgent instead.
   * Cut short too when pushAhead took the lines it was for: lines queued since get a pause of their
   * own (the store's gap after a hold, or the wait for the next write-ahead line), and with none the
   * loop ends.
   */
  async #pause(): Promise<void> {
    while (!this.#urgent) {
      this.#taken = false;
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      await Promise.race([this.#store.pause?.() ?? nextTurn(), woken]);
      this.#wake = null;
      if (!this.#taken || this.#queue.length === 0) break;
    }
    if (this.#urgent) await (this.#store.pauseUrgent?.() ?? nextTurn());
  }

  /** The store is lost (its file replaced, its connection gone): unhealthy now; `now` also probes at once. */
  fault(now = false): void {
    if (this.#closed) return;
    this.#healthy = false;
    if (now) this.#drainLoop ??= this.#drain(true);
    // If a drain loop was already running and ends without a failed batch, this probe follows up.
    this.#scheduleProbe();
  }

  /** Stop taking writes and wait for the queued lines. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#failures?.close();
    if (this.#probeTimer !== null) clearTimeout(this.#probeTimer);
    this.#probeTimer = null;
    await this.#drainLoop;
    // Lines a fault left in memory get one last try; if the store is still unwritable they are lost
    // with the process (keptLines says how many).
    if (this.#kept.count > 0) {
      this.#drainLoop = this.#drain(true);
      await this.#drainLoop;
    }
  }

  /** `probe`: run one batch even with nothing queued, to retry the kept lines (or just the store). */
  async #drain(probe = false): Promise<void> {
    for (;;) {
      await this.#pause();
      const batch = this.#queue;
      const urgent = this.#urgent;
      this.#urgent = false;
      const runEmpty = probe;
      probe = false;
      if (batch.length === 0 && !runEmpty) {
        // Cleared in the same synchronous step as the emptiness check, so a write arriving later
        // always starts a new loop instead of waiting on one that has ended.
        this.#drainLoop = null;
        // A probe that fired while this loop was running (in the pause after a failed batch) left
        // the retry to it; ending unhealthy without a probe pending would stop retries until the
        // next request, and every request is refused meanwhile.
        if (!this.#healthy) this.#scheduleProbe();
        return;
      }
      this.#queue = [];
      this.#running = true;
      try {
        await this.#runBatch(batch, urgent);
      } finally {
        this.#running = false;
      }
      // Nothing was queued while the batch ran (the usual case: an append under a hold is one
      // synchronous write): end now, rather than pause a turn only to find the queue empty, which
      // cost an event-loop turn per batch. A write arriving later starts a new loop, which pauses
      // before its batch as this one did, so writes still share batches as before.
      if (this.#queue.length === 0) {
        this.#drainLoop = null;
        if (!this.#healthy) this.#scheduleProbe();
        return;
      }
    }
  }

  async #runBatch(batch: Pending<T>[], urgent: boolean): Promise<void> {
    const items = batch.map((p) => p.line);
    await this.#store.prepare?.(urgent);
    const started = performance.now();
    let result: R;
    try {
      result = await this.#store.append(this.#kept, items, this.#healthy, urgent);
    } catch (err) {
      this.#batchFailed(batch, items, err, started);
      return;
    }
    this.#batchDone(batch, items, result, started);
  }

  /** A batch reached the store (after the kept lines, if any): health returns and its writes resolve. */
  #batchDone(batch: readonly Pending<T>[], items: readonly T[], result: R, started: number): void {
    this.#onBatch?.((performance.now() - started) / 1000, true);
    const lines = this.#kept.before(items);
    this.#kept.clear();
    const wasHealthy = this.#healthy;
    this.#store.appended?.(lines, result, wasHealthy);
    this.#healthy = true;
    if (!wasHealthy) this.#failures?.recovered();
    for (const p of batch) p.resolve();
  }

  /** A batch did not (all) reach the store: unhealthy, its lines kept or refused (#settleFailed), a probe to come. */
  #batchFailed(batch: readonly Pending<T>[], items: readonly T[], err: unknown, started: number): void {
    this.#onBatch?.((performance.now() - started) / 1000, false);
    this.#healthy = false;
    this.#settleFailed(batch, this.#store.failed(this.#kept.before(items), err));
    this.#scheduleProbe();
  }

  /**
   * After a failed batch: `unwritten` is the tail of the kept lines then the batch's that did not
   * reach the store. A write whose line did reach it (a rotation part-way) resolves; the others are
   * refused, and their lines kept for the retry, except write-ahead lines: their requests are
   * refused, so those lines are given up (a `sent` line for a request never sent is a false record).
   */
  #settleFailed(batch: readonly Pending<T>[], outcome: { unwritten: readonly T[]; failure: Error }): void {
    const keptBefore = this.#kept.count;
    const all = keptBefore + batch.length;
    const firstUnwritten = all - outcome.unwritten.length;
    const retry: T[] = [];
    for (let i = 0; i < outcome.unwritten.length; i++) {
      const at = firstUnwritten + i - keptBefore;
      const pending = at >= 0 ? batch[at] : undefined;
      if (pending?.aheadOfSend) this.#store.dropped?.(pending.line);
      else retry.push(outcome.unwritten[i]!);
    }
    this.#kept.clear();
    this.#kept.keep(retry, (line) => {
      this.#dropped += 1;
      this.#store.dropped?.(line);
    });
    let refused = 0;
    for (let at = 0; at < batch.length; at++) {
      if (keptBefore + at < firstUnwritten) batch[at]!.resolve();
      else {
        batch[at]!.reject(outcome.failure);
        refused++;
      }
    }
    this.#failures?.rejected(outcome.failure, refused);
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
    }, this.#probeMs);
    // A probe never keeps the process alive on its own.
    this.#probeTimer.unref();
  }
}

/** The serialised line of `event` (its body, before the chain's fields), or the error a write of it is refused with. */
export function eventBody(event: AuditEvent, replica: string | undefined): string | ProxyError {
  const invalid = checkEvent(event);
  if (invalid !== null) return new ProxyError('audit_unavailable', `invalid audit event: ${invalid}`);
  try {
    return serializeEvent(event, replica);
  } catch (err) {
    return new ProxyError('audit_unavailable', 'the audit event cannot be serialised', { cause: err });
  }
}

/** What every writer on a batch queue reports of its lines (AuditLog's counts), read from the queue. */
export abstract class QueuedAuditLog<T, R = void> {
  protected abstract readonly queue: BatchQueue<T, R>;

  /** Lines a fault left waiting in memory, written first once the store can be written again. */
  get keptLines(): number {
    return this.queue.keptLines;
  }

  /** Lines not in the store yet: queued for the next batch, or kept through a fault. */
  get pendingLines(): number {
    return this.queue.pendingLines;
  }

  /** Lines given up since the writer opened, because too many were waiting during a fault. */
  get droppedLines(): number {
    return this.queue.droppedLines;
  }
}

/** Lets the rest of this event-loop turn queue its writes, so they share the batch. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
