import { hash } from 'node:crypto';
import { compileGlob, type PathGlob } from '../policy/glob.ts';
import { pathReadings } from '../policy/request-path.ts';
import { type ApprovalDecision, type ApprovalRecord, effectiveState, liveWindow } from './record.ts';

// A person's answer to a pending approval, and what a yes covers afterwards. Pure: the caller
// reads and writes the record under the store's lock and passes the clock.

/** The longest window a person may give in one answer. */
export const MAX_WINDOW_MS = 24 * 3_600_000;
const MAX_REASON = 200;

export interface DecisionAsked {
  approve: boolean;
  /** The window asked for (--for); undefined: the rule's window, or once when it has none. */
  forMs?: number | undefined;
  /** A yes for this request only, whatever the rule's window (Slack's Approve once). */
  once?: boolean | undefined;
  /** Widen the window to the rule's path patterns (--pattern). */
  pattern?: boolean | undefined;
  reason?: string | undefined;
  by: string;
  now: Date;
}

export type DecisionResult = { ok: true; record: ApprovalRecord } | { ok: false; code: 'not_found' | 'conflict' | 'usage'; message: string };

/** The record after a person's answer, or why the answer cannot be taken. */
export function decideApproval(id: string, record: ApprovalRecord | undefined, asked: DecisionAsked): DecisionResult {
  if (record === undefined) return { ok: false, code: 'not_found', message: `no approval ${id}` };
  const state = effectiveState(record, asked.now);
  if (state !== 'pending') return { ok: false, code: 'conflict', message: `approval ${id} is ${state}${whenEnded(record)}: there is nothing left to decide` };
  const at = asked.now.toISOString();
  if (!asked.approve) {
    const reason = asked.reason === undefined ? undefined : oneLine(asked.reason);
    return { ok: true, record: { ...record, state: 'denied', decision: { outcome: 'deny', by: asked.by, at, ...(reason ? { reason } : {}) } } };
  }
  if (asked.forMs !== undefined && !(asked.forMs > 0 && asked.forMs <= MAX_WINDOW_MS)) {
    return { ok: false, code: 'usage', message: 'a window (--for) is more than 0 and at most 24h' };
  }
  const windowMs = asked.once ? 0 : (asked.forMs ?? record.window_ms);
  if (asked.pattern && windowMs === 0) {
    return { ok: false, code: 'usage', message: "--pattern widens a window: give one with --for (the rule's window is 0: once)" };
  }
  const decision: ApprovalDecision =
    windowMs > 0
      ? { outcome: 'window', by: asked.by, at, until: new Date(asked.now.getTime() + windowMs).toISOString(), ...(asked.pattern ? { pattern: true } : {}) }
      : { outcome: 'once', by: asked.by, at };
  return { ok: true, record: { ...record, state: 'approved', decision } };
}

function whenEnded(record: ApprovalRecord): string {
  const at = record.decision?.at ?? record.ended_at;
  return at ? ` (since ${at})` : '';
}

/** A reason as one bounded line: the approver's words reach the agent and the audit log. */
function oneLine(text: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (flat === '') return undefined;
  return flat.length <= MAX_REASON ? flat : `${flat.slice(0, MAX_REASON)}…`;
}

/** What a request is, as an approval or a window is matched against it. */
export interface AskedRequest {
  agent: string;
  grant: string;
  method: string;
  /**
   * The upstream asked for: a yes (once or a window) covers that host and port only. A grant may
   * serve several hosts; the person was shown this one (default deny: another is asked anew).
   */
  host: string;
  port: number;
  path: string;
  /**
   * The query string (`''` or `?…`), never stored or shown: a yes for once (wait: 0) is spent only
   * by a retry with the same query too (its hash is kept), so `?dry_run=true` approved cannot be
   * retried as `?dry_run=false`. A window covers the path whatever the query, as documented.
   */
  query?: string | undefined;
  /**
   * The methods and paths override headers named (X-HTTP-Method-Override and its kin), when the
   * request carried any: such a request is never covered by a window (a yes for POST /x must not
   * pass POST /x that a server reads as DELETE), and a yes for it covers the same overrides only.
   */
  overrides?: string | undefined;
  /** On an MCP endpoint: the tool(s) the tools/call names (a window covers the same tools only). */
  tool?: string | undefined;
  /**
   * A delegated agent's chain, root first, the agent last: a yes covers the same chain only, so a
   * child minted again under another parent, by the same name, is asked again.
   */
  chain?: readonly string[] | undefined;
}

const globs = new Map<string, PathGlob | undefined>();

function compiled(pattern: string): PathGlob | undefined {
  if (!globs.has(pattern)) {
    const glob = compileGlob(pattern);
    // The patterns came from a checked config; one that does not compile covers nothing.
    globs.set(pattern, typeof glob === 'string' ? undefined : glob);
    if (globs.size > 1_000) globs.delete(globs.keys().next().value!);
  }
  return globs.get(pattern);
}

/**
 * Whether a live window covers the request: the same agent, grant and method, and the exact path
 * approved, or (widened with --pattern) a path the rule's patterns allow, read as an allow rule
 * reads it (every reading of an encoded slash must match).
 */
export function windowCovers(record: ApprovalRecord, request: AskedRequest, now: Date): boolean {
  if (!liveWindow(record, now) || request.overrides !== undefined) return false;
  if (record.agent !== request.agent || record.grant !== request.grant || record.method !== request.method.toUpperCase()) return false;
  if (record.host !== request.host || record.port !== request.port) return false;
  if ((record.tool ?? undefined) !== request.tool || !sameChain(record, request)) return false;
  if (record.path === request.path) return true;
  if (!record.decision?.pattern) return false;
  if (record.patterns === null) return true;
  const readings = pathReadings(request.path);
  if (readings === undefined) return false;
  const patterns = record.patterns.map(compiled);
  return readings.every((parts) => patterns.some((g) => g?.matchesParts(parts) === true));
}

/** A yes for once, given to a request asked with wait: 0, that this retry (same body) may spend. */
export function onceFor(record: ApprovalRecord, request: AskedRequest, bodySha256: string): boolean {
  return (
    record.state === 'approved' &&
    record.decision?.outcome === 'once' &&
    record.holder === null &&
    sameRequest(record, request) &&
    (record.body?.sha256 ?? EMPTY_SHA256) === bodySha256
  );
}

/** The same agent (and chain), grant, method, host and port, exact path and query. */
export function sameRequest(record: ApprovalRecord, request: AskedRequest): boolean {
  return (
    record.agent === request.agent &&
    record.grant === request.grant &&
    record.method === request.method.toUpperCase() &&
    record.host === request.host &&
    record.port === request.port &&
    record.path === request.path &&
    record.query_sha256 === querySha256(request.query) &&
    (record.overrides ?? undefined) === request.overrides &&
    (record.tool ?? undefined) === request.tool &&
    sameChain(record, request)
  );
}

/** The same chain of agents (none for a root agent). */
function sameChain(record: ApprovalRecord, request: AskedRequest): boolean {
  return (record.chain ?? []).join('\n') === (request.chain ?? []).join('\n');
}

/** What an approval keeps of a query: its hash (undefined without one), never the query itself. */
export function querySha256(query: string | undefined): string | undefined {
  return query === undefined || query === '' ? undefined : hash('sha256', query, 'hex');
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
