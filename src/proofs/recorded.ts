// A request as the audit log recorded it, and the verdict the policy in effect then gave it. Audit
// lines keep method, host, port, path (without its query), agent, grant, time, client address and
// an MCP call's tool; never the query or the body. Only lines whose policy verdict the log states
// are compared: a line refused before the policy was asked (no key, a rate limit) or one that
// failed upstream after an unknown stage says nothing of what the policy decided.

import type { AuditLine } from '../audit/record.ts';

export interface RecordedRequest {
  readonly seq: number;
  readonly ts: string;
  readonly agent: string;
  readonly grant: string | undefined;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  /** Without its query (the log never has it). */
  readonly path: string;
  readonly sourceIp: string;
  /** On an MCP endpoint: the JSON-RPC methods posted (a batch's, in order), the first tools/call's tool, and how many tools/call. */
  readonly mcp: RecordedMcp | undefined;
  /** What the policy in effect said when the line was written. */
  readonly allowed: boolean;
  /** The code of a refusal (policy_denied, rule_denied, host_not_allowed). */
  readonly code: string | undefined;
  /** The rule or policy the line names. */
  readonly rule: string | undefined;
  /** The hash of the policy that decided, where the line carries one. */
  readonly policyHash: string | undefined;
  /** Methods and paths an override header named (X-HTTP-Method-Override, X-Original-URL and their kin): judged too, as the access stage judges them. */
  readonly overrideMethods: readonly string[];
  readonly overridePaths: readonly string[];
  /** The path was recorded cut (over 1 KiB): the policy cannot be asked about the path that was sent. */
  readonly pathCut: boolean;
  /** The anomaly signals the line names (its `signal`), replayed as Cedar's context.signal. */
  readonly signals: readonly string[] | undefined;
}

export interface RecordedMcp {
  readonly methods: readonly string[];
  readonly tool: string | undefined;
  readonly calls: number;
}

/** Refusals that are the policy's own: the grant stage and the rules. */
const POLICY_REFUSALS = new Set(['policy_denied', 'rule_denied', 'host_not_allowed']);
/**
 * Refusals that come after the policy admitted the request (a person said no, a budget, a quota):
 * the policy's verdict was "allowed". Anything else is not compared.
 */
const LATER_REFUSALS = new Set([
  'approval_required',
  'approval_denied',
  'approval_expired',
  'purpose_required',
  'budget_exceeded',
  'budget_unmeterable',
  'rate_limited',
  'quota_exhausted',
]);

/** The line as a recorded request with its verdict, or undefined when the line states no policy verdict. */
export function recordedRequest(line: AuditLine): RecordedRequest | undefined {
  if (line.agent === null || line.method === null || line.path === null) return undefined;
  // A write-ahead line with no outcome after it (a crash mid-request) is written after the access
  // stage: the policy had admitted it, like any `inject` line.
  let allowed: boolean;
  if (line.decision === 'inject') allowed = true;
  else if (line.decision === 'deny' && line.code !== null && POLICY_REFUSALS.has(line.code)) allowed = false;
  else if (line.decision === 'deny' && line.code !== null && LATER_REFUSALS.has(line.code) && line.grant !== null) allowed = true;
  else return undefined;
  const extra = line as unknown as Record<string, unknown>;
  const hash = typeof extra['policy'] === 'string' && extra['policy'].startsWith('sha256:') ? extra['policy'] : undefined;
  return {
    seq: line.seq,
    ts: line.ts,
    agent: line.agent,
    grant: line.grant ?? undefined,
    method: line.method,
    host: line.host.toLowerCase(),
    port: line.port,
    path: line.path,
    sourceIp: line.client,
    mcp:
      line.mcp === undefined
        ? undefined
        : { methods: line.mcp.method.split(','), tool: line.mcp.tool, calls: line.mcp.calls ?? (line.mcp.method.split(',').includes('tools/call') ? 1 : 0) },
    allowed,
    code: allowed ? undefined : (line.code ?? undefined),
    rule: line.rule,
    policyHash: hash,
    overrideMethods: line.method_override === undefined ? [] : line.method_override.split(','),
    // Joined with commas as written; a comma inside a path is a literal one, so split only before a `/`.
    overridePaths: line.path_override === undefined ? [] : line.path_override.split(/,(?=\/)/),
    pathCut: line.path_truncated === true,
    signals: signalNames(extra['signal']),
  };
}

/** A line's `signal` (anomaly: [{name, why}]) as the names Cedar reads; anything else: none. */
function signalNames(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const names = value
    .map((s) => (typeof s === 'object' && s !== null ? (s as { name?: unknown }).name : undefined))
    .filter((n): n is string => typeof n === 'string');
  return names.length > 0 ? names : undefined;
}
