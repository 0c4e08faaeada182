import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../audit/index.ts';
import type { ApprovalRecord } from './record.ts';

/**
 * An approval's audit line (decision `approval`): a request asked about, a person's answer, an
 * expiry, a withdrawal. In the hash chain with every other line, so `keyway audit verify` covers
 * them. The request's own line (allowed, or refused with an approval_* code) carries the same
 * `approval.id`.
 */
export function approvalLine(record: ApprovalRecord, what: { outcome: string; by?: string | undefined; message?: string | undefined }): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id: randomUUID(),
    agent: record.agent,
    ...(record.chain !== undefined ? { chain: record.chain } : {}),
    grant: record.grant,
    decision: 'approval',
    code: null,
    method: record.method,
    host: record.host,
    port: record.port,
    path: record.path,
    status: null,
    duration_ms: 0,
    refreshed: false,
    client: 'keyway',
    approval: { id: record.id, outcome: what.outcome, ...(what.by !== undefined ? { by: what.by } : {}) },
    rule: record.rule,
    ...(record.purpose !== null ? { purpose: record.purpose } : {}),
    ...(what.message !== undefined ? { message: what.message.slice(0, 500) } : {}),
  };
}
