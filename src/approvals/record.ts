import { randomBytes } from 'node:crypto';

// An approval as the store keeps it (`approval:<id>`): one request a rule sent to a person
// (approve: human), what they decided, and, for a yes that covers a window, the window itself: the
// lease a person grants on one agent, grant, method and path (or the rule's path patterns).
// Records are shared by every process on the store, so a decision made at one replica reaches the
// replica holding the request through the store's change feed.

export const APPROVAL_PREFIX = 'approval:';
export const approvalRecordId = (id: string): string => `${APPROVAL_PREFIX}${id}`;

/**
 * - pending: waiting for a person (held by a process, or, with wait: 0, for the agent's retry);
 * - approved: a yes; `decision` says once or for a window;
 * - used: a yes for once, spent by the request it was for;
 * - denied: a no; expired: nobody answered in time;
 * - withdrawn: the held request's client hung up first; interrupted: the keyway holding it stopped.
 */
export type ApprovalState = 'pending' | 'approved' | 'used' | 'denied' | 'expired' | 'withdrawn' | 'interrupted';

export interface ApprovalDecision {
  outcome: 'once' | 'window' | 'deny';
  /** Who decided: `session` (the dashboard), `token` (the admin API), the CLI's user@host. */
  by: string;
  at: string;
  /** A window's end (ISO). */
  until?: string | undefined;
  /** The window covers the rule's path patterns, not only the exact path approved. */
  pattern?: boolean | undefined;
  /** A deny's reason as the approver wrote it (their words, shown to the agent). */
  reason?: string | undefined;
}

/** What the request's body was, as shown to the approver. Never the body itself. */
export interface ApprovalBody {
  bytes: number;
  type: string | null;
  /** Hex SHA-256 of the body (on an MCP endpoint, of its calls without their ids): a yes given with wait: 0 lets only a retry with the same through. */
  sha256: string;
  /** A bounded and redacted preview (preview.ts); null when the type is not previewed. */
  preview: string | null;
  /** The rule said approval.preview: none: the preview is null by the rule's word, not the body's type. */
  withheld?: true | undefined;
}

/** The process holding a request while it waits: so that a restart can tell its requests are gone. */
export interface ApprovalHolder {
  host: string;
  pid: number;
  started_at: string;
  replica?: string | undefined;
}

export interface ApprovalRecord {
  id: string;
  state: ApprovalState;
  agent: string;
  /** A delegated agent's chain, root first, the agent last (as its audit lines carry it); absent for a root agent. */
  chain?: string[] | undefined;
  grant: string;
  /** The rule that asked, by name (`agents.x.rules[2] (POST /repos/** approve: human)`). */
  rule: string;
  /**
   * An anomaly hold on a rule that asks already: that rule's whole name (`rule` is the question as
   * shown, cut). With the signals' names, what the question is: a window covers the same one only.
   */
  asked_rule?: string | undefined;
  /** Unusual use that asked (anomaly: hold): each signal and why; absent when no signal asked. */
  signals?: Array<{ name: string; why: string }> | undefined;
  method: string;
  host: string;
  port: number;
  /** Normalised, without its query string. */
  path: string;
  /** The query string's SHA-256 (absent without one): a yes for once binds it; never the query itself. */
  query_sha256?: string | undefined;
  /** What override headers named (`method DELETE; path /admin`), shown to the approver; absent without. */
  overrides?: string | undefined;
  /** On an MCP endpoint: the tool(s) a tools/call asks for (what a person approves; a window covers these only). */
  tool?: string | undefined;
  purpose: string | null;
  body: ApprovalBody | null;
  asked_at: string;
  /** Pending until then: the rule's wait for a held request, approvals.pending_ttl with wait: 0. */
  expires_at: string;
  /** null with wait: 0: nothing is held, the agent retries. */
  holder: ApprovalHolder | null;
  /** The rule's window (ms; 0: once) and path patterns (null: any path), for the approver's choice. */
  window_ms: number;
  patterns: string[] | null;
  decision?: ApprovalDecision | undefined;
  /** When it stopped being pending other than by a decision, or when a yes for once was spent. */
  ended_at?: string | undefined;
  /** Why it ended that way, in keyway's words. */
  ended_because?: string | undefined;
}

/** A short id a person can type: `ap_` and 12 base32 characters (60 bits). */
export function newApprovalId(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(12);
  let id = 'ap_';
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

export const APPROVAL_ID = /^ap_[a-z2-9]{12}$/;

/** Pending past its deadline reads as expired, whether or not anyone has written it so yet. */
export function effectiveState(record: ApprovalRecord, now: Date): ApprovalState {
  if (record.state === 'pending' && Date.parse(record.expires_at) <= now.getTime()) return 'expired';
  return record.state;
}

/** A yes for a window that has not ended. */
export function liveWindow(record: ApprovalRecord, now: Date): boolean {
  return record.state === 'approved' && record.decision?.outcome === 'window' && Date.parse(record.decision.until ?? '') > now.getTime();
}
