import type { AuditEvent } from '../../audit/index.ts';
import { auditUnavailable } from '../../audit/unavailable.ts';
import { writeAheadLine } from '../../audit/sink.ts';
import type { HeadStage } from './request.ts';

/**
 * The last stage before the credential goes on: the request's first audit line (`phase: "sent"`)
 * is written, and the request waits until it is in the kernel (appended to the file) or committed
 * (audit.sink: postgres). So a credential never leaves keyway without a line recording its use,
 * whatever happens next: a SIGKILL, an OOM kill or a crash while the upstream holds the request
 * loses at most the outcome. The outcome follows as today's line, with the same `id`, when the
 * request ends. Requests waiting at once share one append (the batch queue's group commit).
 */
export const auditWriteAhead: HeadStage = {
  name: 'audit-write-ahead',
  injected: true,
  run({ conn, draft }) {
    // audit.write_ahead: false trades this for less CPU per request (docs/perf/write-ahead.md).
    if (!conn.decisions.config.audit.write_ahead) return;
    const { audit } = conn.records;
    const line = sentLine(draft.event);
    // A request alone is appended before writeAhead returns (null): it goes on in this same turn.
    const appending = writeAheadLine(audit, line);
    if (appending === null) return;
    return appending.catch(() => {
      throw auditUnavailable(audit, 'down');
    });
  },
};

/** The line as it stands before the request goes: what is known, no status yet, marked sent. */
function sentLine(event: AuditEvent): AuditEvent {
  return { ...event, decision: 'inject', code: null, status: null, phase: 'sent' };
}
