// Appends audit lines to this replica's hash chain in the table keyway_audit (audit.sink: postgres).
//
// It behaves as the file writer (../writer.ts) does, with the database in the file's place:
//   - every write() joins a batch; one batch at a time goes in as one statement (rows and the MAC'd
//     head together, session.ts), so lines keep the order write() was called in;
//   - a failed batch (the database down, a statement timeout) marks the writer unhealthy, which
//     makes the proxy refuse every request that would inject (503 audit_unavailable); the batch's
//     lines are kept in memory (bounded) and lead the next batch; while unhealthy a probe retries
//     every PROBE_MS without waiting for traffic, so keyway recovers by itself;
//   - after a failure the session is dropped and a new one made (lock, head read again): a commit
//     whose answer was lost is then found by its event ids, and those lines are not written twice,
//     so the chain has neither duplicates nor gaps.
// The connection dropping while idle turns the writer unhealthy at once (before any request relies
// on it) and starts the probe.

import { ProxyError } from '../../errors/index.ts';
import type { ChainHead } from '../head.ts';
import { KeptLines } from '../kept-lines.ts';
import { checkEvent, serializeEvent, type AuditEvent } from '../record.ts';
import type { AuditLog } from '../sink.ts';
import { reasonOf, type AuditDatabase } from './connection.ts';
import { ChainSession, isChainTaken, type TableLine } from './session.ts';

export interface TableWriterOptions extends AuditDatabase {
  /** This keyway's chain: audit.replica, or the host name. */
  replica: string;
  /** HMAC key for the head rows (the audit head key, derived from the master key). */
  headKey: Buffer;
  /** Hears how long each batch took and whether it reached the table. */
  onBatch?: ((seconds: number, ok: boolean) => void) | undefined;
}

interface Pending {
  line: TableLine;
  resolve: () => void;
  reject: (err: Error) => void;
}

// While unhealthy: how often the kept lines are retried (which is also the health probe).
const PROBE_MS = 200;
// At start, a replica restarted right after a crash may find its old session still holding the
// lock for a moment (the server notices a dead client when its socket closes): wait this long.
const OPEN_LOCK_WAIT_MS = 3_000;

export class TableAuditWriter implements AuditLog {
  readonly #db: TableWriterOptions;
  #session: ChainSession | null = null;
  /** The last head this process wrote: a new session never goes below it. */
  #written: ChainHead | null = null;
  #queue: Pending[] = [];
  #drainLoop: Promise<void> | null = null;
  #healthy = true;
  #closed = false;
  readonly #kept = new KeptLines<TableLine>((line) => line.body);
  /** A batch failed after it may have reached the database: the next session checks its event ids. */
  #inDoubt = false;
  #dropped = 0;
  #probeTimer: NodeJS.Timeout | null = null;

  private constructor(opts: TableWriterOptions) {
    this.#db = opts;
  }

  /** Connects and takes this replica's chain; refuses (audit_invalid) while another keyway holds it. */
  static async open(opts: TableWriterOptions): Promise<TableAuditWriter> {
    const writer = new TableAuditWriter(opts);
    const deadline = performance.now() + OPEN_LOCK_WAIT_MS;
    for (;;) {
      try {
        writer.#session = await writer.#openSession();
        return writer;
      } catch (err) {
        if (!isChainTaken(err) || performance.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  get healthy(): boolean {
    return this.#healthy && !this.#closed;
  }

  /** No disk to account for: a line is promised whenever the table is being written. */
  reserveLine(): boolean {
    return !this.#closed && this.#healthy;
  }

  get keptLines(): number {
    return this.#kept.count;
  }

  get pendingLines(): number {
    return this.#queue.length + this.#kept.count;
  }

  get droppedLines(): number {
    return this.#dropped;
  }

  /** Queue one line. Resolves once it is committed; rejects with audit_unavailable if it could not be. */
  write(event: AuditEvent, _reserved = false): Promise<void> {
    if (this.#closed) return Promise.reject(new ProxyError('audit_unavailable', 'the audit writer is closed'));
    const invalid = checkEvent(event);
    if (invalid !== null) return Promise.reject(new ProxyError('audit_unavailable', `invalid audit event: ${invalid}`));
    let body: string;
    try {
      body = serializeEvent(event, this.#db.replica);
    } catch (err) {
      return Promise.reject(new ProxyError('audit_unavailable', 'the audit event cannot be serialised', { cause: err }));
    }
    const at = Date.parse(event.ts);
    const line: TableLine = { body, id: event.id, ts: new Date(Number.isNaN(at) ? Date.now() : at).toISOString() };
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      this.#drainLoop ??= this.#drain();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probeTimer !== null) clearTimeout(this.#probeTimer);
    this.#probeTimer = null;
    await this.#drainLoop;
    // Lines a fault left in memory get one last try; if the database is still down they are lost
    // with the process (keptLines says how many).
    if (this.#kept.count > 0) {
      this.#drainLoop = this.#drain(true);
      await this.#drainLoop;
    }
    const session = this.#session;
    this.#session = null;
    await session?.end();
  }

  #openSession(): Promise<ChainSession> {
    return ChainSession.open(this.#db, this.#db.replica, this.#db.headKey, this.#written, () => this.#sessionLost());
  }

  /** The connection dropped (the database restarted, the network broke): unhealthy now, probe until back. */
  #sessionLost(): void {
    if (this.#closed || this.#session === null || !this.#session.lost) return;
    this.#healthy = false;
    this.#scheduleProbe();
  }

  async #drain(probe = false): Promise<void> {
    for (;;) {
      // Let the rest of this event-loop turn queue its writes so they share the batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch = this.#queue;
      const runEmpty = probe;
      probe = false;
      if (batch.length === 0 && !runEmpty) {
        this.#drainLoop = null;
        if (!this.#healthy) this.#scheduleProbe();
        return;
      }
      this.#queue = [];
      await this.#runBatch(batch);
    }
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      const session = await this.#ready();
      const lines = [...this.#kept.lines, ...batch.map((p) => p.line)];
      if (lines.length > 0) {
        this.#inDoubt = true;
        this.#written = await session.append(lines);
        this.#inDoubt = false;
      }
    } catch (err) {
      this.#onBatch(started, false);
      this.#fail(batch, err);
      return;
    }
    this.#onBatch(started, true);
    this.#kept.clear();
    this.#healthy = true;
    for (const p of batch) p.resolve();
  }

  /** The session to write with: the current one, or a new one (lock, head) with doubtful lines settled. */
  async #ready(): Promise<ChainSession> {
    const current = this.#session;
    if (current !== null && !current.lost) return current;
    this.#session = null;
    await current?.end();
    const session = await this.#openSession();
    this.#session = session;
    if (this.#inDoubt) {
      // The last statement may have committed before its answer was lost: what it wrote stays,
      // and is not written again.
      const written = await session.written(this.#kept.lines.map((l) => l.id));
      this.#kept.retain((line) => !written.has(line.id));
      this.#inDoubt = false;
    }
    return session;
  }

  #fail(batch: Pending[], err: unknown): void {
    this.#healthy = false;
    // Whatever the failure, this session is done: a new one re-reads the head under the lock.
    const session = this.#session;
    this.#session = null;
    void session?.end();
    const unwritten = [...this.#kept.lines, ...batch.map((p) => p.line)];
    this.#kept.clear();
    this.#kept.keep(unwritten, () => {
      this.#dropped += 1;
    });
    const failure = new ProxyError('audit_unavailable', `the audit table could not be written (${reasonOf(err)}); the line is kept and retried`, {
      cause: err,
    });
    for (const p of batch) p.reject(failure);
    this.#scheduleProbe();
  }

  #onBatch(started: number, ok: boolean): void {
    this.#db.onBatch?.((performance.now() - started) / 1000, ok);
  }

  /** While unhealthy, retry without waiting for traffic: no request arrives to retry for us when all are refused. */
  #scheduleProbe(): void {
    if (this.#closed || this.#probeTimer !== null) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = null;
      if (this.#healthy || this.#closed) return;
      this.#drainLoop ??= this.#drain(true);
    }, PROBE_MS);
    this.#probeTimer.unref();
  }
}
