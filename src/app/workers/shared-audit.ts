// One writer of the audit file under proxy.workers: the primary. Each worker serialises its lines
// (the work that grows with traffic stays spread over the workers) and hands them to the primary in
// one IPC message per event-loop turn; the primary seals and appends them with its own, and answers
// when they are in the file.
//
// Why: with every worker appending under the file's lock, each turn of the lock between workers
// cost a lock directory made and removed, the file reopened and its tail read back for the other's
// chain head, and the waiting worker's retries; under write-ahead (a batch before every injected
// request) that was ~36% more CPU per request at two workers than with write-ahead off (docs/perf/
// workers-audit.md). With one writer there is no turn to take: the chain, its lock against other
// processes (the CLI), rotation, retention and the room account are the primary's, as for a keyway
// on its own.
//
// What a worker's log promises is what the file writer's does:
// - write() resolves once the primary has appended the line (a write-ahead line: before the worker
//   sends the request on), rejects with audit_unavailable when the primary could not;
// - reserveLine() is false while the primary's writer is unhealthy or short of room, and the
//   worker's reservations (its injected requests in flight) ride on every message, so the primary's
//   one room account counts them as its own: a worker admits a request only while the last word it
//   had said there was room (a turn of lag, which ROOM_FLOOR covers as it covers a refresh's);
// - lines are never held without bound: past MAX_UNANSWERED lines the primary has not answered,
//   new ones are refused (write) or counted as dropped (record), and the worker reports unhealthy.
// The primary gone (the channel closed): every line waiting is refused, the worker reports
// unhealthy, and it stops (worker-main.ts).
import { ProxyError } from '../../errors/index.ts';
import { eventBody } from '../../audit/batch-queue.ts';
import type { AuditWriter } from '../../audit/file/writer.ts';
import type { AuditEvent } from '../../audit/record.ts';
import type { AuditLog } from '../../audit/sink.ts';
import type { FromPrimary, FromWorker } from './messages.ts';

/** A request waits on this line: its batch goes at once (the write-ahead line). */
export const AUDIT_URGENT = 1;
/** The line's room was promised by a reservation (the worker's `reserved` count drops by it). */
export const AUDIT_PROMISED = 2;

/** Lines sent and not yet answered, past which a worker refuses more (the primary is stuck or gone). */
export const MAX_UNANSWERED = 20_000;
/** How often the primary looks at its writer's health, to tell the workers (AuditFromWorkers.watchHealth). */
const HEALTH_MS = 100;
/** How long close() waits for the primary to answer the lines already sent. */
const CLOSE_WAIT_MS = 5_000;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

interface Sent {
  readonly count: number;
  /** One slot per line, in order: undefined for a line nobody waits on. */
  readonly waiters: readonly (Waiter | undefined)[];
}

/** A worker's audit log: its lines go to the primary's writer (see the file's head). */
export class PrimaryAuditLog implements AuditLog {
  readonly #send: (message: FromWorker) => unknown;
  readonly #connected: () => boolean;
  readonly #replica: string | undefined;
  /** The primary's writer, as its last message said. */
  #primaryHealthy = true;
  /** Injected requests admitted and not yet written (reserveLine's, given back by write(…, true)). */
  #reserved = 0;
  /** The reservations the primary was last told of. */
  #reportedReserved = 0;
  #bodies: string[] = [];
  #flags: number[] = [];
  #waiters: (Waiter | undefined)[] = [];
  #flushScheduled = false;
  #nextId = 1;
  readonly #sent = new Map<number, Sent>();
  #unanswered = 0;
  #dropped = 0;
  #closed = false;
  #gone = false;
  #drained: (() => void) | null = null;

  constructor(send: (message: FromWorker) => unknown, connected: () => boolean, replica: string | undefined) {
    this.#send = send;
    this.#connected = connected;
    this.#replica = replica;
  }

  get medium(): 'file' {
    return 'file';
  }

  get healthy(): boolean {
    return this.#primaryHealthy && !this.#gone && !this.#closed && this.#connected() && this.#pending() < MAX_UNANSWERED;
  }

  get pendingLines(): number {
    return this.#pending();
  }

  get droppedLines(): number {
    return this.#dropped;
  }

  reserveLine(): boolean {
    if (!this.healthy) return false;
    this.#reserved += 1;
    this.#flushSoon();
    return true;
  }

  write(event: AuditEvent, reserved = false): Promise<void> {
    const body = this.#admit(event, reserved);
    if (typeof body !== 'string') return Promise.reject(body);
    return new Promise<void>((resolve, reject) => this.#queue(body, event, reserved, { resolve, reject }));
  }

  record(event: AuditEvent, reserved = false): void {
    const body = this.#admit(event, reserved);
    if (typeof body !== 'string') this.#dropped += 1;
    else this.#queue(body, event, reserved, undefined);
  }

  /** The primary's word on its writer's health (`audit-health`), or the answer to a message (`audit-done`). */
  answer(message: Extract<FromPrimary, { t: 'audit-done' | 'audit-health' }>): void {
    this.#primaryHealthy = message.healthy;
    if (message.t === 'audit-health') return;
    const sent = this.#sent.get(message.id);
    if (sent === undefined) return;
    this.#sent.delete(message.id);
    this.#unanswered -= sent.count;
    let failed = 0;
    for (let i = 0; i < sent.waiters.length; i++) {
      const waiter = sent.waiters[i];
      if (message.failed[failed] === i) {
        failed += 1;
        waiter?.reject(new ProxyError('audit_unavailable', message.error ?? 'the audit line could not be written'));
      } else waiter?.resolve();
    }
    if (this.#sent.size === 0) this.#drained?.();
  }

  /** The channel closed: nothing more reaches the file, so every line waiting is refused. */
  primaryGone(): void {
    this.#gone = true;
    const err = new ProxyError('audit_unavailable', 'the primary process, which writes the audit log, is gone');
    for (const waiter of this.#waiters) waiter?.reject(err);
    this.#dropped += this.#bodies.length;
    this.#bodies = [];
    this.#flags = [];
    this.#waiters = [];
    for (const sent of this.#sent.values()) for (const waiter of sent.waiters) waiter?.reject(err);
    this.#sent.clear();
    this.#unanswered = 0;
    this.#drained?.();
  }

  /** Sends what is queued, then waits (up to CLOSE_WAIT_MS) for the primary's answers. */
  async close(): Promise<void> {
    this.#flush();
    this.#closed = true;
    if (this.#sent.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      timer.unref();
      this.#drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #pending(): number {
    return this.#unanswered + this.#bodies.length;
  }

  #admit(event: AuditEvent, reserved: boolean): string | ProxyError {
    if (reserved) this.#reserved = Math.max(0, this.#reserved - 1);
    if (this.#closed) return new ProxyError('audit_unavailable', 'the audit writer is closed');
    if (this.#gone || !this.#connected()) return new ProxyError('audit_unavailable', 'the primary process, which writes the audit log, is gone');
    // The primary answers nothing (stuck): refuse rather than hold lines without bound.
    if (this.#pending() >= MAX_UNANSWERED) return new ProxyError('audit_unavailable', 'the audit log is not keeping up: too many lines wait for the primary');
    return eventBody(event, this.#replica);
  }

  #queue(body: string, event: AuditEvent, reserved: boolean, waiter: Waiter | undefined): void {
    this.#bodies.push(body);
    this.#flags.push((event.phase === 'sent' ? AUDIT_URGENT : 0) | (reserved ? AUDIT_PROMISED : 0));
    this.#waiters.push(waiter);
    this.#flushSoon();
  }

  /** Once per turn: every line (and reservation) of this turn in one message. */
  #flushSoon(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const count = this.#bodies.length;
    if (count === 0 && this.#reserved === this.#reportedReserved) return;
    if (this.#gone) return;
    const id = this.#nextId++;
    const message: FromWorker = { t: 'audit', id, bodies: this.#bodies, flags: this.#flags, reserved: this.#reserved };
    this.#reportedReserved = this.#reserved;
    if (count > 0) {
      this.#sent.set(id, { count, waiters: this.#waiters });
      this.#unanswered += count;
    }
    this.#bodies = [];
    this.#flags = [];
    this.#waiters = [];
    try {
      this.#send(message);
    } catch {
      // The channel closed under us: 'disconnect' follows, and primaryGone() refuses the lines.
    }
  }
}

/**
 * The primary's side: each worker's lines into its writer, each worker's reservations into its room
 * account, and an answer per message. `pid` names the worker (its reservations end with it).
 */
export class AuditFromWorkers {
  readonly #writer: AuditWriter;
  readonly #reserved = new Map<number, number>();
  /** The health the last answer or word to a worker said. */
  #said = true;
  #watch: NodeJS.Timeout | null = null;

  constructor(writer: AuditWriter) {
    this.#writer = writer;
  }

  /**
   * Tells every worker the writer's health each HEALTH_MS when it differs from what was last said,
   * and each time while it is unhealthy: a worker that heard "unhealthy" in an answer refuses what
   * it would inject, so it may send no more lines to hear "healthy" in; and a fault that came and
   * went between two looks must not leave one worker refusing.
   */
  watchHealth(tellAll: (message: FromPrimary) => void): void {
    this.#watch ??= setInterval(() => {
      const healthy = this.#writer.healthy;
      if (healthy && this.#said) return;
      this.#said = healthy;
      tellAll({ t: 'audit-health', healthy });
    }, HEALTH_MS);
    this.#watch.unref();
  }

  stop(): void {
    if (this.#watch !== null) clearInterval(this.#watch);
    this.#watch = null;
  }

  take(pid: number, message: Extract<FromWorker, { t: 'audit' }>, reply: (answer: FromPrimary) => void): void {
    // Our own processes send these; a message of another shape (a bug) is passed over, never thrown on.
    const { bodies, flags, reserved } = message;
    if (!Array.isArray(bodies) || !Array.isArray(flags)) return;
    this.#setReserved(pid, Number.isSafeInteger(reserved) && reserved > 0 ? reserved : 0);
    const waits: Promise<void>[] = [];
    for (let i = 0; i < bodies.length; i++) {
      const flag = flags[i] ?? 0;
      const body = bodies[i];
      const urgent = (flag & AUDIT_URGENT) !== 0;
      const promised = (flag & AUDIT_PROMISED) !== 0;
      // The message is answered once all its lines are in the file (or refused, line by line).
      waits.push(isLineBody(body) ? this.#writer.writeBody(body, urgent, promised) : Promise.reject(new Error('not an audit line')));
    }
    if (waits.length === 0) return;
    const id = message.id;
    void Promise.allSettled(waits).then((settled) => {
      const failed: number[] = [];
      let error: string | null = null;
      for (let i = 0; i < settled.length; i++) {
        const outcome = settled[i]!;
        if (outcome.status === 'fulfilled') continue;
        failed.push(i);
        error ??= outcome.reason instanceof Error ? outcome.reason.message : 'the audit line could not be written';
      }
      const healthy = this.#writer.healthy;
      this.#said &&= healthy;
      reply({ t: 'audit-done', id, failed, error, healthy });
    });
  }

  /** The worker `pid` is gone: its requests in flight will write nothing. */
  workerGone(pid: number): void {
    this.#setReserved(pid, 0);
    this.#reserved.delete(pid);
  }

  #setReserved(pid: number, lines: number): void {
    const before = this.#reserved.get(pid) ?? 0;
    if (lines === before) return;
    this.#reserved.set(pid, lines);
    let total = 0;
    for (const n of this.#reserved.values()) total += n;
    this.#writer.setOutsideReservations(total);
  }
}

/**
 * What the primary appends for a worker: one JSON object's text as serializeEvent writes it, on one
 * line (JSON escapes every control character, so none is in it raw). Anything else would break the
 * file's one-line-per-event form, and is refused.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what a line body never holds
const CONTROL = /[\u0000-\u001f]/;
function isLineBody(body: unknown): body is string {
  return typeof body === 'string' && body.startsWith('{') && body.endsWith('}') && !CONTROL.test(body);
}

/** The primary's handling of a worker's `audit` message; without a file writer (never, as configs go), every line is refused. */
export function takeWorkerAudit(
  workers: AuditFromWorkers | undefined,
  pid: number,
  message: Extract<FromWorker, { t: 'audit' }>,
  reply: (answer: FromPrimary) => void,
): void {
  if (workers !== undefined) return workers.take(pid, message, reply);
  if (message.bodies.length === 0) return;
  const failed = message.bodies.map((_, i) => i);
  reply({ t: 'audit-done', id: message.id, failed, error: 'the primary writes no audit file', healthy: false });
}
