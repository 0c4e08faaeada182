// What of an audit line may leave keyway for a SIEM: an explicit allow-list of documented fields
// (docs/audit.md), copied by name. Every formatter reads this shape and nothing else, so a field added
// to the audit line later reaches no receiver until it is listed here. Left out on purpose: `purpose`
// (text the agent chose), `message` and `hint` (free text), `identity`, `usage`, `mcp`, `recovered`
// and every other extra: none is needed to say who did what where, and each is text a reviewer
// would have to vouch for. The path never carries a query string: the writer strips it
// (audit/record.ts), and this strips it again.

import type { AuditLine } from '../audit/record.ts';

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
  return out;
}

function withoutQuery(path: string): string {
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}
