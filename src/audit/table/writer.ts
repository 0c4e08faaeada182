// Appends audit lines to this replica's hash chain in the table keyway_audit (audit.sink: postgres).
//
// It runs on the same batch queue as the file writer (../batch-queue.ts), with the database in the
// file's place: one batch at a time goes in as one statement (rows and the MAC'd head together,
// session.ts); a failed batch (the database down, a statement timeout) turns the writer unhealthy,
// keeps its lines for the next batch and probes every PROBE_MS until the database is back.
// After a failure the session is dropped and a new one made (lock, head read again): a commit whose
// answer was lost is then found by its event ids, and those lines are not written twice, so the
// chain has neither duplicates nor gaps.
// The connection dropping while idle turns the writer unhealthy at once (before any request relies
// on it) and starts the probe.

import { ProxyError } from '../../errors/index.ts';
import { BatchQueue, QueuedAuditLog } from '../batch-queue.ts';
import type { ChainHead } from '../head.ts';
import type { WriteFailures } from '../failure-log.ts';
import { KeptLines } from '../kept-lines.ts';
import type { AuditEvent } from '../record.ts';
import type { AuditLog } from '../sink.ts';
import { reasonOf, type AuditDatabase } from './connection.ts';
import { ChainSession, eventIdColumn, isChainTaken, type TableLine } from './session.ts';
import type { CheckpointSigner, CheckpointSignerOptions } from '../checkpoints/signer.ts';

export interface TableWriterOptions extends AuditDatabase {
  /** This keyway's chain: audit.replica, or the host name. */
  replica: string;
  /** HMAC key for the head rows (the audit head key, derived from the master key). */
  headKey: Buffer;
  /** Hears how long each batch took and whether it reached the table. */
  onBatch?: ((seconds: number, ok: boolean) => void) | undefined;
  /** Signs checkpoints of this chain (../checkpoints/): on its timer and at close, kept in keyway_audit_checkpoint. */
  checkpoints?: ((store: CheckpointSignerOptions['store']) => CheckpointSigner) | undefined;
  /** Hears every write refused and the table's recovery (failure-log.ts: the app log, at a bounded rate). */
  failures?: WriteFailures | undefined;
}

// While unhealthy: how often the kept lines are retried (which is also the health probe).
const PROBE_MS = 200;
// At start, a replica restarted right after a crash may find its old session still holding the
// lock for a moment (the server notices a dead client when its socket closes): wait this long.
const OPEN_LOCK_WAIT_MS = 3_000;

export class TableAuditWriter extends QueuedAuditLog<TableLine> implements AuditLog {
  readonly #db: TableWriterOptions;
  #session: ChainSession | null = null;
  /** The last head this process wrote: a new session never goes below it. */
  #written: ChainHead | null = null;
  protected override readonly queue: BatchQueue<TableLine>;
  /** A batch failed after it may have reached the database: the next session checks its event ids. */
  #inDoubt = false;
  readonly #checkpoints: CheckpointSigner | undefined;

  private constructor(opts: TableWriterOptions) {
    super();
    this.#db = opts;
    this.queue = new BatchQueue<TableLine>(
      {
        append: (kept, batch) => this.#append(kept, batch),
        failed: (lines, err) => this.#failed(lines, err),
      },
      { kept: new KeptLines<TableLine>((line) => line.body), probeMs: PROBE_MS, onBatch: opts.onBatch, failures: opts.failures },
    );
    this.#checkpoints = opts.checkpoints?.(async (checkpoint, line) => {
      const session = this.#session;
      if (session === null || session.lost) throw new Error('no audit database session');
      await session.checkpoint(checkpoint.seq, line);
    });
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
    return this.queue.writable;
  }

  get medium(): 'database' {
    return 'database';
  }

  /** No disk to account for: a line is promised whenever the table is being written. */
  reserveLine(): boolean {
    return this.queue.writable;
  }

  /** Queue one line. Resolves once it is committed; rejects with audit_unavailable if it could not be. */
  write(event: AuditEvent, _reserved = false): Promise<void> {
    const line = this.#line(event);
    return line instanceof ProxyError ? this.queue.refuse(line) : this.queue.push(line, event.phase === 'sent');
  }

  /** write() for a line nobody waits for: a failure is reported by the queue (failure-log.ts), not returned. */
  record(event: AuditEvent, _reserved = false): void {
    const line = this.#line(event);
    if (line instanceof ProxyError) this.queue.refuseUnawaited(line);
    else this.queue.pushUnawaited(line, event.phase === 'sent');
  }

  #line(event: AuditEvent): TableLine | ProxyError {
    const body = this.queue.bodyOf(event, this.#db.replica);
    if (typeof body !== 'string') return body;
    const at = Date.parse(event.ts);
    return { body, id: eventIdColumn(event), ts: new Date(Number.isNaN(at) ? Date.now() : at).toISOString() };
  }

  async close(): Promise<void> {
    await this.queue.close();
    // The last head signed while the session still holds the chain.
    await this.#checkpoints?.close();
    const session = this.#session;
    this.#session = null;
    await session?.end();
  }

  #openSession(): Promise<ChainSession> {
    return ChainSession.open(this.#db, this.#db.replica, this.#db.headKey, this.#written, () => this.#sessionLost());
  }

  /** The connection dropped (the database restarted, the network broke): unhealthy now, probe until back. */
  #sessionLost(): void {
    if (this.queue.closed || this.#session === null || !this.#session.lost) return;
    this.queue.fault();
  }

  async #append(kept: KeptLines<TableLine>, batch: readonly TableLine[]): Promise<void> {
    const session = await this.#ready(kept);
    const lines = kept.before(batch);
    if (lines.length > 0) {
      this.#inDoubt = true;
      this.#written = await session.append(lines);
      this.#inDoubt = false;
      this.#checkpoints?.seen(this.#written);
    }
  }

  /** The session to write with: the current one, or a new one (lock, head) with doubtful lines settled. */
  async #ready(kept: KeptLines<TableLine>): Promise<ChainSession> {
    const current = this.#session;
    if (current !== null && !current.lost) return current;
    this.#session = null;
    await current?.end();
    const session = await this.#openSession();
    this.#session = session;
    if (this.#inDoubt) {
      // The last statement may have committed before its answer was lost: what it wrote stays,
      // and is not written again.
      const written = await session.written(kept.lines.map((l) => l.id));
      kept.retain((line) => !written.has(line.id));
      this.#inDoubt = false;
    }
    return session;
  }

  #failed(lines: readonly TableLine[], err: unknown): { unwritten: readonly TableLine[]; failure: Error } {
    // Whatever the failure, this session is done: a new one re-reads the head under the lock.
    const session = this.#session;
    this.#session = null;
    void session?.end();
    const failure = new ProxyError('audit_unavailable', `the audit table could not be written (${reasonOf(err)}); the line is kept and retried`, {
      cause: err,
    });
    return { unwritten: lines, failure };
  }
}
