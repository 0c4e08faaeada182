import type { AuditEvent } from './record.ts';

/** What the proxy and the admin API need of the audit writer. */
export interface AuditSink {
  /** `reserved`: this line's room was promised by reserveLine(), which this gives back. */
  write(event: AuditEvent, reserved?: boolean): Promise<void>;
  readonly healthy: boolean;
  /** Promise room for the line of a request about to be injected; false: refuse it. Synchronous. */
  reserveLine(): boolean;
}
