// Refusals past a budget are counted, not written one by one (else an agent could erase its own trail). A refusal costs an agent almost nothing and each one used to write a line, so an agent
// could fill the log as fast as it could send, and rotation then deletes the oldest files: the
// evidence. Here a refusal's line is written in full while its budgets last; past them, identical
// refusals are counted into ONE summary line per interval (`repeated: N`, `first`, `last`), written
// through the same writer (same hash chain) when the interval ends, or when keyway stops. The
// volume an agent can force then grows with time, not with its request rate. The client still gets
// its answer to every request, and /metrics and `keyway status` still count each (they are counted
// before this: AuditDraft.commit, CountingAudit).
//
// "Identical" means the same actor, decision, code, method, host and port. The actor is the agent,
// or for a refusal made before any agent was identified (407, 429, a malformed request) the client
// address. The path, message, hint and rule are not part of it: varying the path (which is free)
// does not make a refusal new. What an agent could still vary, host and method, is bounded by the
// per-actor budgets below, and client addresses (an attacker may own many) by the global ones, which
// count only refusals with no agent: an agent's are bounded by its own budgets, so no flood of
// unauthenticated refusals can take an agent's lines or its summaries (which name it).
//
// Only `decision: deny` is budgeted: a refusal taken before anything went upstream. `error` lines
// (an upstream unreachable, a timeout) may follow a request that carried a credential, and an
// injected or tunnelled request's line is never folded. The hot path (allowed requests) pays one
// comparison.

import { randomUUID } from 'node:crypto';
import type { AuditEvent } from './record.ts';
import type { RetentionHold } from './retention.ts';
import { type AuditLog, recordLine, writeAheadLine } from './sink.ts';

// The defaults of audit.refusal_interval and audit.refusal_budget.
/** Length of one budget interval. */
export const REFUSAL_INTERVAL_MS = 10_000;
/** Identical refusals written in full per interval; the rest are counted in the summary line. */
export const IDENTICAL_BUDGET = 20;
/** Refusal lines written in full per actor per interval, whatever they are: this many times the budget. */
const ACTOR_FACTOR = 5;
/** Refusal lines written in full per interval, all actors together (many client addresses): this many times. */
const TOTAL_FACTOR = 20;
/** Distinct summaries one actor may have per interval; past it, its refusals share one per code. */
export const ACTOR_SUMMARIES = 20;
/** Summaries tracked per interval for refusals with no agent; past it, new ones share one per decision and code (`overflow`). */
export const MAX_SUMMARIES = 1_000;

interface Summary {
  /** Refusals of this kind written in full this interval. */
  full: number;
  /** Refusals counted instead of written. */
  repeated: number;
  first: string;
  last: string;
  /**
   * The fields that made them identical, for the summary line; `client`, which is not one of them
   * for an agent's refusals, is the address the counted ones came from (foldedFrom).
   */
  readonly fields: Pick<AuditEvent, 'agent' | 'decision' | 'code' | 'method' | 'host' | 'port' | 'status' | 'client'>;
  readonly overflow: boolean;
  /** The summary past every bound names no client, whoever sent them. */
  readonly anonymous: boolean;
}

export interface RefusalBudgetOptions {
  /** audit.refusal_budget: identical refusals written in full per interval. */
  budget?: number | undefined;
  intervalMs?: number | undefined;
  now?: (() => Date) | undefined;
  /**
   * Where refusals are budgeted instead: under proxy.workers, a worker hands each to the primary, whose
   * budget is the one for the whole keyway (app/workers/shared-refusals.ts). False when it could not
   * (the primary gone): the budget here decides, so a refusal is never lost.
   */
  elsewhere?: ((event: AuditEvent) => boolean) | undefined;
}

/** An audit log that folds refusals past their budgets into summary lines (see the top of this file). */
export class RefusalBudget implements AuditLog {
  readonly #inner: AuditLog;
  readonly #intervalMs: number;
  readonly #identical: number;
  readonly #perActor: number;
  readonly #overall: number;
  readonly #now: () => Date;
  readonly #elsewhere: ((event: AuditEvent) => boolean) | undefined;
  #summaries = new Map<string, Summary>();
  /** Per actor: lines written in full and summaries started, this interval. */
  #actors = new Map<string, { full: number; summaries: number }>();
  #total = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(inner: AuditLog, options: RefusalBudgetOptions = {}) {
    this.#inner = inner;
    this.#intervalMs = options.intervalMs ?? REFUSAL_INTERVAL_MS;
    this.#identical = options.budget ?? IDENTICAL_BUDGET;
    this.#perActor = ACTOR_FACTOR * this.#identical;
    this.#overall = TOTAL_FACTOR * this.#identical;
    this.#now = options.now ?? (() => new Date());
    this.#elsewhere = options.elsewhere;
  }

  /** The writer behind the budget. */
  get inner(): AuditLog {
    return this.#inner;
  }

  get healthy(): boolean {
    return this.#inner.healthy;
  }

  get medium(): AuditLog['medium'] {
    return this.#inner.medium;
  }

  reserveLine(): boolean {
    return this.#inner.reserveLine();
  }

  get pendingLines(): number {
    return this.#inner.pendingLines;
  }

  get droppedLines(): number {
    return this.#inner.droppedLines;
  }

  get retentionHold(): RetentionHold | null {
    return this.#inner.retentionHold ?? null;
  }

  get rotationError(): Error | null {
    return this.#inner.rotationError ?? null;
  }

  /** Refusals counted into summaries not written yet (for tests and status). */
  get foldedPending(): number {
    let n = 0;
    for (const s of this.#summaries.values()) n += s.repeated;
    return n;
  }

  /** A write-ahead line is never a refusal: straight to the writer. */
  writeAhead(event: AuditEvent): Promise<void> | null {
    return writeAheadLine(this.#inner, event);
  }

  /** write() without a promise for the usual line; a refusal goes through write() and its budget. */
  record(event: AuditEvent, reserved?: boolean): void {
    if (event.decision !== 'deny' || reserved === true || this.#closed) recordLine(this.#inner, event, reserved);
    else this.write(event, reserved).catch(() => undefined);
  }

  write(event: AuditEvent, reserved?: boolean): Promise<void> {
    if (event.decision !== 'deny' || reserved === true || this.#closed) return this.#inner.write(event, reserved);
    if (this.#elsewhere?.(event) === true) return Promise.resolve();
    return this.#refusal(event);
  }

  /** Writes the summaries of the interval so far, then closes the writer under it. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    await this.#inner.close();
  }

  /** Ends the interval: its summary lines are written (in the order their kinds first appeared). */
  async flush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const summaries = this.#summaries;
    this.#summaries = new Map();
    this.#actors = new Map();
    this.#total = 0;
    const ts = this.#now().toISOString();
    const writes: Promise<void>[] = [];
    for (const s of summaries.values()) {
      if (s.repeated === 0) continue;
      const line: AuditEvent = {
        ts,
        id: randomUUID(),
        agent: s.fields.agent,
        grant: null,
        decision: s.fields.decision,
        code: s.fields.code,
        method: s.fields.method,
        host: s.fields.host,
        port: s.fields.port,
        path: null,
        status: s.fields.status,
        duration_ms: 0,
        refreshed: false,
        client: s.fields.client,
        repeated: s.repeated,
        first: s.first,
        last: s.last,
      };
      if (s.overflow) line.overflow = true;
      // A line that cannot be written is counted by the writer (droppedLines); nothing to add here.
      writes.push(this.#inner.write(line).catch(() => undefined));
    }
    await Promise.all(writes);
  }

  #refusal(event: AuditEvent): Promise<void> {
    const actorKey = event.agent !== null ? `a:${event.agent}` : `c:${event.client}`;
    let actor = this.#actors.get(actorKey);
    let key = `${actorKey}\n${event.decision}\n${event.code}\n${event.method}\n${event.host}\n${event.port}`;
    let summary = this.#summaries.get(key);
    let overflow = false;
    // An identified agent is one of those configured (few, bounded by the operator): the bounds for
    // all actors together, which exist for client addresses (anyone on the host may use any of
    // 127.0.0.0/8), never apply to it. Otherwise unauthenticated refusals from many addresses could
    // fold every agent's refusals into lines naming no agent, host or path, or take their share.
    const identified = event.agent !== null;
    if (summary === undefined) {
      if (!identified && this.#summaries.size >= MAX_SUMMARIES) {
        // Past every bound: one summary per decision and code, naming no agent, client or host.
        overflow = true;
        key = `*\n${event.decision}\n${event.code}`;
      } else if (actor !== undefined && actor.summaries >= ACTOR_SUMMARIES) {
        // This actor varies host or method: its further kinds share one summary per code.
        overflow = true;
        key = `${actorKey}\n*\n${event.decision}\n${event.code}`;
      }
      summary = this.#summaries.get(key);
    }
    if (summary === undefined) {
      const global = overflow && key.startsWith('*');
      summary = {
        full: 0,
        repeated: 0,
        first: event.ts,
        last: event.ts,
        overflow,
        anonymous: global,
        fields: {
          agent: global ? null : event.agent,
          decision: event.decision,
          code: event.code,
          method: overflow ? null : event.method,
          host: overflow ? '' : event.host,
          port: overflow ? 0 : event.port,
          status: event.status,
          client: global ? '' : event.client,
        },
      };
      this.#summaries.set(key, summary);
      if (!global) {
        actor ??= { full: 0, summaries: 0 };
        actor.summaries++;
        this.#actors.set(actorKey, actor);
      }
      this.#timer ??= this.#armTimer();
    }
    if (
      !summary.overflow &&
      actor !== undefined &&
      summary.full < this.#identical &&
      actor.full < this.#perActor &&
      (identified || this.#total < this.#overall)
    ) {
      summary.full++;
      actor.full++;
      if (!identified) this.#total++;
      return this.#inner.write(event);
    }
    if (summary.repeated === 0) summary.first = event.ts;
    foldedFrom(summary, event.client);
    summary.repeated++;
    summary.last = event.ts;
    return Promise.resolve();
  }

  #armTimer(): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.#intervalMs);
    // The interval's end never keeps the process alive; stopping flushes (close).
    timer.unref();
    return timer;
  }
}

/**
 * The summary's `client`: the address its counted refusals came from, "" once they came from more
 * than one. Not the first refusal's of its kind: that one was written in full, and an agent's
 * refusals (one kind whatever the address) then read as its client's when they came from others.
 */
function foldedFrom(summary: Summary, client: string): void {
  if (summary.anonymous) return;
  if (summary.repeated === 0) summary.fields.client = client;
  else if (summary.fields.client !== client) summary.fields.client = '';
}
