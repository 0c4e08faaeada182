import { ProxyError } from '../errors/index.ts';
import type { AuditSink } from './sink.ts';

// 503 audit_unavailable as the agent and the person reading its hint see it: what to check depends
// on where the lines go. A database sink has no disk to fill; telling someone to free disk space
// while the audit database is down sends them the wrong way.

/**
 * `down`: the sink is not writing at all; `no-room`: it could not promise this request's line
 * (the file sink keeps room in reserve; the table sink refuses only while it is down).
 */
export function auditUnavailable(sink: Pick<AuditSink, 'medium'>, why: 'down' | 'no-room'): ProxyError {
  if (sink.medium === 'database') {
    return new ProxyError(
      'audit_unavailable',
      'the audit table cannot be written (its database is unreachable or refused the write); nothing is sent until it can',
      {
        hint: "check the audit database (audit.sink: postgres): that it runs, is reachable and accepts keyway's writes; /readyz names the fault, and keyway resumes by itself once it is back",
      },
    );
  }
  if (why === 'down') {
    return new ProxyError('audit_unavailable', 'the audit log cannot be written; nothing is sent until it can', {
      hint: 'check free disk space and the permissions of the audit path',
    });
  }
  return new ProxyError(
    'audit_unavailable',
    "the audit log cannot take this request's line (unwritable, or too little room left); nothing is sent until it can",
    {
      hint: 'check free disk space (keyway keeps about 1 MiB in reserve), file-size limits, and the permissions of the audit path',
    },
  );
}
