import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../../audit/event.ts';
import type { AuditCode } from '../../errors/index.ts';

// A Slack callback keyway refused, as an audit line: someone tried to answer an approval, or to
// pass for Slack, and the log says so, not only the app log. One line per refusal, `decision:
// admin`, `action: slack.callback` (what the admin listener writes for its own refusals), with:
//   - code: admin_auth_failed (a wrong or stale signature, a clicker not in approvals.slack.approvers),
//     admin_auth_required (no signature at all), bad_request (not a payload keyway reads),
//     conflict (a replayed payload; a button bound to another message or body; an approval no
//     longer pending), not_found (no such approval);
//   - message: the reason in keyway's words (and the approval's id when the click named one);
//   - actor: `slack:USER_ID` when the payload named a clicker (read, never trusted, before the
//     signature held: a forged callback names whoever it likes);
//   - client: the address the HTTP callback came from, or `slack-socket-mode`;
//   - path: /slack/interactivity (HTTP) or null (Socket Mode); host `slack`, port 0.
// Never the payload, the signature, the timestamp's body, a token or the reason a person typed.

export type CallbackVia = { kind: 'http'; client: string } | { kind: 'socket' };

export interface RefusedCallback {
  code: AuditCode;
  reason: string;
  user?: string | undefined;
  approval?: string | undefined;
}

const USER_ID = /^[UW][A-Z0-9]{2,20}$/;

export function refusedCallbackEvent(refused: RefusedCallback, via: CallbackVia, now: Date): AuditEvent {
  const user = refused.user !== undefined && USER_ID.test(refused.user) ? refused.user : undefined;
  return {
    ts: now.toISOString(),
    id: randomUUID(),
    agent: null,
    grant: null,
    decision: 'admin',
    code: refused.code,
    method: 'POST',
    host: 'slack',
    port: 0,
    path: via.kind === 'http' ? '/slack/interactivity' : null,
    status: null,
    duration_ms: 0,
    refreshed: false,
    client: via.kind === 'http' ? via.client : 'slack-socket-mode',
    action: 'slack.callback',
    message: `${refused.approval !== undefined ? `${refused.approval}: ` : ''}${refused.reason}`.slice(0, 300),
    ...(user !== undefined ? { actor: `slack:${user}` } : {}),
  };
}

/** Refused callbacks written in full per interval; past it, counted and written as one summary line. */
const BUDGET = 20;
const INTERVAL_MS = 10_000;

/**
 * Anyone who can reach the callback URL can send refusals (no signature is needed to be refused),
 * and the admin listener writes no line for its own unauthenticated requests: so these lines are
 * bounded. Per 10 s, the first 20 are written in full; the rest are counted, and one summary line
 * (`repeated: N`, `first`, `last`, the last refusal's code) is written when the interval ends.
 */
export class RefusedCallbackLines {
  readonly #write: (event: AuditEvent) => Promise<void>;
  readonly #now: () => Date;
  #windowStart = 0;
  #written = 0;
  #over: { count: number; first: string; last: AuditEvent } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(write: (event: AuditEvent) => Promise<void>, now: () => Date) {
    this.#write = write;
    this.#now = now;
  }

  add(event: AuditEvent): void {
    const nowMs = this.#now().getTime();
    if (nowMs >= this.#windowStart + INTERVAL_MS) {
      this.flush();
      this.#windowStart = nowMs;
      this.#written = 0;
    }
    if (this.#written < BUDGET) {
      this.#written++;
      this.#write(event).catch(() => undefined);
      return;
    }
    if (this.#over === undefined) {
      this.#over = { count: 0, first: event.ts, last: event };
      this.#timer = setTimeout(() => this.flush(), this.#windowStart + INTERVAL_MS - nowMs);
      this.#timer.unref();
    }
    this.#over.count++;
    this.#over.last = event;
  }

  /** Writes the summary of what the interval counted, if anything (at its end, and at stop). */
  flush(): void {
    clearTimeout(this.#timer);
    const over = this.#over;
    this.#over = undefined;
    if (over === undefined) return;
    const { last } = over;
    this.#write({
      ...last,
      id: randomUUID(),
      ts: this.#now().toISOString(),
      path: null,
      client: '',
      actor: undefined,
      message: `${over.count} more refused Slack callbacks in 10 s, counted, not written one by one`,
      repeated: over.count,
      first: over.first,
      last: last.ts,
    }).catch(() => undefined);
  }
}
