// Requests served since start, for `keyway status` (admin GET /api/status).
import type { AuditEvent, AuditSink, AuditWriter } from './audit/index.ts';

/**
 * The audit writer as the proxy sees it, counting what it is given: every proxied request writes
 * exactly one line, so these are the requests served (and refused) that `keyway status` reports.
 */
export class CountingAudit implements AuditSink {
  readonly #writer: AuditWriter;
  requests = 0;
  refused = 0;

  constructor(writer: AuditWriter) {
    this.#writer = writer;
  }

  get healthy(): boolean {
    return this.#writer.healthy;
  }

  reserveLine(): boolean {
    return this.#writer.reserveLine();
  }

  write(event: AuditEvent, reserved?: boolean): Promise<void> {
    this.requests++;
    if (event.decision === 'deny' || event.decision === 'error') this.refused++;
    return this.#writer.write(event, reserved);
  }
}
