// Requests served since start, for `keyway status` (admin GET /api/status), and the last hour minute
// by minute, for the dashboard's overview (admin GET /api/overview).
import type { AuditEvent, AuditSink } from '../audit/index.ts';
import { recordLine, writeAheadLine } from '../audit/sink.ts';

/** One minute of proxied requests: counts by decision, in-request token refreshes, refusal codes. */
export interface MinuteCount {
  /** The minute's start (ISO 8601). */
  minute: string;
  inject: number;
  tunnel: number;
  deny: number;
  error: number;
  refreshed: number;
  /** By refusal or error code; codes are keyway's own (a fixed set), so this stays small. */
  codes: Record<string, number>;
}

/** Decisions a proxied request's line may have (admin, self_check and approval lines are not traffic). */
export type TrafficDecision = 'inject' | 'tunnel' | 'deny' | 'error';

/** `n` requests alike (one minute, decision, code, refresh), as another keyway hands them over. */
export interface RequestTally {
  minuteMs: number;
  decision: TrafficDecision;
  code: string | null;
  refreshed: boolean;
  n: number;
}

/** A ring of the last `size` minutes. Costs one array lookup per request. */
export class RecentMinutes {
  readonly #size: number;
  readonly #now: () => number;
  readonly #ring: Array<MinuteCount | undefined>;
  /** The minute (ms since the epoch / 60,000) each slot of the ring counts. */
  readonly #ringMinute: number[];

  constructor(size = 60, now: () => number = Date.now) {
    this.#size = size;
    this.#now = now;
    this.#ring = new Array(size);
    this.#ringMinute = new Array<number>(size).fill(-1);
  }

  add(event: AuditEvent): void {
    // Not traffic: an operator's change, or keyway answering its own check host.
    if (event.decision === 'admin' || event.decision === 'self_check' || event.decision === 'approval') return;
    const minute = Math.floor(this.#now() / 60_000);
    const slot = minute % this.#size;
    let count = this.#ring[slot];
    // Compared as a number: this runs for every request, the ISO string once a minute.
    if (count === undefined || this.#ringMinute[slot] !== minute) {
      count = { minute: new Date(minute * 60_000).toISOString(), inject: 0, tunnel: 0, deny: 0, error: 0, refreshed: 0, codes: {} };
      this.#ring[slot] = count;
      this.#ringMinute[slot] = minute;
    }
    count[event.decision]++;
    if (event.refreshed) count.refreshed++;
    if (event.code !== null) count.codes[event.code] = (count.codes[event.code] ?? 0) + 1;
  }

  /** Requests another keyway served for this one (a contained run's: app/contain-door.ts), `n` alike, in the minute starting `minuteMs`; a minute out of the ring is dropped. */
  addCounted(tally: RequestTally): void {
    const minute = Math.floor(tally.minuteMs / 60_000);
    const now = Math.floor(this.#now() / 60_000);
    if (minute > now || minute <= now - this.#size) return;
    const slot = minute % this.#size;
    let count = this.#ring[slot];
    if (count === undefined || this.#ringMinute[slot] !== minute) {
      count = { minute: new Date(minute * 60_000).toISOString(), inject: 0, tunnel: 0, deny: 0, error: 0, refreshed: 0, codes: {} };
      this.#ring[slot] = count;
      this.#ringMinute[slot] = minute;
    }
    count[tally.decision] += tally.n;
    if (tally.refreshed) count.refreshed += tally.n;
    if (tally.code !== null) count.codes[tally.code] = (count.codes[tally.code] ?? 0) + tally.n;
  }

  /** The last `size` minutes, oldest first, the current one last; quiet minutes as zeros. */
  snapshot(): MinuteCount[] {
    const now = Math.floor(this.#now() / 60_000);
    const out: MinuteCount[] = [];
    for (let minute = now - this.#size + 1; minute <= now; minute++) {
      const start = new Date(minute * 60_000).toISOString();
      const count = this.#ring[minute % this.#size];
      out.push(
        count?.minute === start ? { ...count, codes: { ...count.codes } } : { minute: start, inject: 0, tunnel: 0, deny: 0, error: 0, refreshed: 0, codes: {} },
      );
    }
    return out;
  }
}

/**
 * The audit writer as the proxy sees it, counting what it is given: every proxied request writes
 * exactly one line, so these are the requests served (and refused) that `keyway status` reports.
 */
export class CountingAudit implements AuditSink {
  readonly #writer: AuditSink;
  readonly #elsewhere: ((event: AuditEvent) => void) | undefined;
  readonly recent: RecentMinutes;
  requests = 0;
  refused = 0;
  /** Of those, the ones another keyway served for this one (countElsewhere). */
  readonly elsewhere = { requests: 0, refused: 0 };

  readonly #stamp: ((event: AuditEvent) => void) | undefined;

  /**
   * `elsewhere`: told of each request counted, for a keyway that counts them too (a contained run's
   * tells the running keyway). `stamp`: fills in what every line carries before it is written (the
   * policy's hash, where a stage has not set the one that judged the request).
   */
  constructor(writer: AuditSink, recent = new RecentMinutes(), elsewhere?: (event: AuditEvent) => void, stamp?: (event: AuditEvent) => void) {
    this.#writer = writer;
    this.recent = recent;
    this.#elsewhere = elsewhere;
    this.#stamp = stamp;
  }

  /** Requests another keyway served for this one (app/contain-door.ts): in the status counts and the overview. */
  countElsewhere(tally: RequestTally): void {
    this.requests += tally.n;
    this.elsewhere.requests += tally.n;
    if (tally.decision === 'deny' || tally.decision === 'error') {
      this.refused += tally.n;
      this.elsewhere.refused += tally.n;
    }
    this.recent.addCounted(tally);
  }

  get healthy(): boolean {
    return this.#writer.healthy;
  }

  get medium(): AuditSink['medium'] {
    return this.#writer.medium;
  }

  reserveLine(): boolean {
    return this.#writer.reserveLine();
  }

  write(event: AuditEvent, reserved?: boolean): Promise<void> {
    this.#stamp?.(event);
    this.#count(event);
    return this.#writer.write(event, reserved);
  }

  /** A write-ahead line counts nothing (the request is counted at its outcome). */
  writeAhead(event: AuditEvent): Promise<void> | null {
    this.#stamp?.(event);
    return writeAheadLine(this.#writer, event);
  }

  record(event: AuditEvent, reserved?: boolean): void {
    this.#stamp?.(event);
    this.#count(event);
    recordLine(this.#writer, event, reserved);
  }

  #count(event: AuditEvent): void {
    // A write-ahead line is the first of a request's two: the request is counted once, at its outcome.
    if (event.phase === 'sent') return;
    this.requests++;
    if (event.decision === 'deny' || event.decision === 'error') this.refused++;
    this.recent.add(event);
    this.#elsewhere?.(event);
  }
}
