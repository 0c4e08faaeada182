import { randomUUID } from 'node:crypto';
import type { AuditEvent } from './record.ts';

/** The fields that say what an admin line records; the request fields it has none of are filled in. */
export type AdminEventFields = Partial<Omit<AuditEvent, 'decision' | 'ts' | 'id'>> & { action: string; client: string };

/**
 * A `decision: admin` line that records no proxied request: an operator's change, or keyway's own
 * note about itself (a store made anew, a crash artifact sealed, a key change finished at open).
 */
export function adminEvent(fields: AdminEventFields): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id: randomUUID(),
    agent: null,
    grant: null,
    decision: 'admin',
    code: null,
    method: null,
    host: '',
    port: 0,
    path: null,
    status: null,
    duration_ms: 0,
    refreshed: false,
    ...fields,
  };
}
