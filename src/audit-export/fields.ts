// What of an audit line may leave keyway for a SIEM: an explicit allow-list of documented fields
// (docs/audit.md), copied by name. Every formatter reads this shape and nothing else, so a field added
// to the audit line later reaches no receiver until it is listed here. docs/audit.md's export section
// names every field of the line (audit/event.ts) left out, and why (test/unit/audit-export/fields.test.ts
// checks that each one is named there or exported). The path never carries a query string: the
// writer strips it (audit/record.ts), and this strips it again.

import type { AuditLine } from '../audit/record.ts';
import { cutUtf8 } from './text.ts';

/** An anomaly signal's why is keyway's own sentence (names, a path class): bounded so a datagram keeps room for the rest. */
const WHY_BYTES = 200;

export interface ExportedLine {
  seq: number;
  hash: string;
  ts: string;
  id: string;
  decision: string;
  code: string | null;
  agent: string | null;
  grant: string | null;
  method: string | null;
  host: string;
  port: number;
  path: string | null;
  status: number | null;
  duration_ms: number;
  client: string;
  rule?: string;
  /** An operator's change (decision admin): what was done (`grants.create`) and by whom. */
  action?: string;
  actor?: string;
  /** A delegated agent's ancestors, root first. */
  chain?: string[];
  /** `sent`: a request's write-ahead line (its outcome follows under the same id). */
  phase?: 'sent';
  /** An approval's outcome (approved_once, denied, …). */
  approval?: string;
  /** A summary line: how many identical refusals it stands for. */
  repeated?: number;
  replica?: string;
  /** Who answered the approval (a session, the admin token, the CLI's user@host, a Slack approver's mapped name) and its id. */
  approval_by?: string;
  approval_id?: string;
  /** Anomaly signals (src/anomaly/): each name and keyway's why. */
  signal?: Array<{ name: string; why: string }>;
  /** The hash of the policy in force (`sha256:…`) and `warn` when a refusal was only reported. */
  policy?: string;
  policy_mode?: 'warn';
}

/** The allow-listed fields of one line. */
export function exportedLine(line: AuditLine): ExportedLine {
  const out: ExportedLine = {
    seq: line.seq,
    hash: line.hash,
    ts: line.ts,
    id: line.id,
    decision: line.decision,
    code: line.code,
    agent: line.agent,
    grant: line.grant,
    method: line.method,
    host: line.host,
    port: line.port,
    path: line.path === null ? null : withoutQuery(line.path),
    status: line.status,
    duration_ms: line.duration_ms,
    client: line.client,
  };
  if (typeof line.rule === 'string') out.rule = line.rule;
  if (typeof line.action === 'string') out.action = line.action;
  if (typeof line.actor === 'string') out.actor = line.actor;
  if (Array.isArray(line.chain)) out.chain = line.chain.filter((a): a is string => typeof a === 'string');
  if (line.phase === 'sent') out.phase = 'sent';
  if (typeof line.approval?.outcome === 'string') out.approval = line.approval.outcome;
  if (typeof line.repeated === 'number') out.repeated = line.repeated;
  if (typeof line.replica === 'string') out.replica = line.replica;
  if (typeof line.approval?.by === 'string') out.approval_by = line.approval.by;
  if (typeof line.approval?.id === 'string') out.approval_id = line.approval.id;
  if (Array.isArray(line.signal)) {
    const signals = line.signal
      .filter((s) => typeof s?.name === 'string' && typeof s.why === 'string')
      .map((s) => ({ name: s.name, why: cutUtf8(s.why, WHY_BYTES) }));
    if (signals.length > 0) out.signal = signals;
  }
  if (typeof line.policy === 'string' && /^sha256:[0-9a-f]{64}$/.test(line.policy)) out.policy = line.policy;
  if (line.policy_mode === 'warn') out.policy_mode = 'warn';
  return out;
}

function withoutQuery(path: string): string {
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}
