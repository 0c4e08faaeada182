import type { AuditEvent } from '../../src/audit/index.ts';

/** The `i`-th of a run of plain injected-request events, for tests that drive the audit writer directly. */
export function injectEvent(i: number): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id: `req-${i}`,
    agent: 'a',
    grant: 'github',
    decision: 'inject',
    code: null,
    method: 'GET',
    host: 'api.example.test',
    port: 443,
    path: '/',
    status: 200,
    duration_ms: 1,
    refreshed: false,
    client: '127.0.0.1',
  };
}
