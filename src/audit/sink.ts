import type { RetentionHold } from './retention.ts';
import type { AuditEvent } from './record.ts';

/** What the proxy and the admin API need of the audit writer. */
export interface AuditSink {
  /** `reserved`: this line's room was promised by reserveLine(), which this gives back. */
  write(event: AuditEvent, reserved?: boolean): Promise<void>;
  /**
   * write() for a line nobody waits for (a request's outcome), without a promise: a failure is
   * reported by the writer (failure-log.ts), as a dropped rejection was. Writers that queue lines
   * have it; elsewhere the caller falls back to write().
   */
  record?(event: AuditEvent, reserved?: boolean): void;
  /**
   * A request's write-ahead line (phase sent): null once it is in the log, which a writer that can
   * append it at once gives before returning (the file's, for a request alone); else write()'s
   * promise. Writers without it: the caller uses write().
   */
  writeAhead?(event: AuditEvent): Promise<void> | null;
  readonly healthy: boolean;
  /** Where the lines go: a file on disk, or a table in a database (what a refusal tells to check). */
  readonly medium: 'file' | 'database';
  /** Promise room for the line of a request about to be injected; false: refuse it. Synchronous. */
  reserveLine(): boolean;
}

/** A whole audit writer as the composition root holds it: the file's (file/writer.ts) or the table's (table/writer.ts). */
export interface AuditLog extends AuditSink {
  /** Lines not written yet: queued for the next batch, or kept through a fault. */
  readonly pendingLines: number;
  /** Lines given up since the writer opened, because too many were waiting during a fault. */
  readonly droppedLines: number;
  /** Rotated files audit.min_retention keeps past audit.keep (the file sink only; null when none). */
  readonly retentionHold?: RetentionHold | null;
  /** Why the last rotation or pruning failed (the file sink only; null when it works). */
  readonly rotationError?: Error | null;
  /** Stop accepting writes and wait for the queued lines (one last try for the kept ones). */
  close(): Promise<void>;
}

/** A settling function or handler that has nothing to do (one shared function, not one made per call). */
export const IGNORE = (): void => undefined;

/** Writes a line nobody waits for: by the sink's record() where it has one, else write() with its failure dropped. */
export function recordLine(sink: AuditSink, event: AuditEvent, reserved?: boolean): void {
  if (sink.record !== undefined) sink.record(event, reserved);
  else sink.write(event, reserved).catch(IGNORE);
}

/** Writes a request's write-ahead line: by the sink's writeAhead() where it has one (null: in the log now), else write(). */
export function writeAheadLine(sink: AuditSink, event: AuditEvent): Promise<void> | null {
  return sink.writeAhead !== undefined ? sink.writeAhead(event) : sink.write(event);
}
