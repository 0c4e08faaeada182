import type { AuditEvent } from '../audit/index.ts';
import { newEventId } from '../audit/event-id.ts';
import { recordLine } from '../audit/sink.ts';
import { isoTime } from '../iso-time.ts';
import { auditDecisionOf, type ProxyError } from '../errors/index.ts';
import type { Records } from './contract.ts';

/** Keeps one refusal from growing an audit line without bound (a host name is at most 253). */
const MAX_TEXT = 500;

function boundText(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT - 1)}…`;
}

let isoMs = -1;
let isoText = '';

/** The time as an ISO string, made once per millisecond: under load several requests start in each. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = isoTime(ms);
  }
  return isoText;
}

/** What is known of a request when its draft is started. */
export type DraftStart = Pick<AuditEvent, 'method' | 'host' | 'port' | 'client'> & Partial<Pick<AuditEvent, 'agent' | 'path'>>;

/** One audit line's worth of facts, filled in as the stages run. */
export class AuditDraft {
  readonly #startedAt = performance.now();
  readonly event: AuditEvent;
  /** The writer promised this line its room (reserveLine): an injected request's line. */
  reserved = false;
  /** Seconds from sending upstream to the response head, once one came (the metrics' upstream latency). */
  upstreamSeconds: number | undefined;

  constructor(start: DraftStart) {
    // Every fixed field, in the audit line's order: one object shape for all drafts, which the
    // writer serialises as it is (serializeEvent).
    this.event = {
      ts: isoNow(),
      id: newEventId(),
      agent: start.agent ?? null,
      grant: null,
      decision: 'error',
      code: null,
      method: start.method,
      host: start.host,
      port: start.port,
      path: start.path ?? null,
      status: null,
      duration_ms: 0,
      refreshed: false,
      client: start.client,
    };
  }

  failed(err: ProxyError): void {
    this.event.decision = auditDecisionOf(err.code);
    this.event.code = err.code;
    this.event.status = err.answer?.status ?? err.status;
    // What the agent was told, so that `keyway audit tail` can say why without a second source.
    this.event.message = boundText(err.message);
    if (err.identity !== undefined) this.event.identity = err.identity;
    if (err.hint === undefined) delete this.event.hint;
    else this.event.hint = boundText(err.hint);
  }

  /** Writes the line. Never throws: a failed write turns the sink unhealthy, which refuses traffic. */
  commit(records: Records): void {
    this.event.duration_ms = Math.round((performance.now() - this.#startedAt) * 100) / 100;
    const reserved = this.reserved;
    this.reserved = false; // given back once, even if a line were committed twice
    // The one place every request passes once: counted here, from the line's own fields.
    records.metrics.request(this.event, this.upstreamSeconds);
    // A failed write is said by the writer, at a bounded rate (audit/failure-log.ts): while the log
    // or its database is down every refused request's line fails, and a line each would bury the rest.
    // Nothing waits on it: no promise is made (recordLine).
    recordLine(records.audit, this.event, reserved);
  }
}
