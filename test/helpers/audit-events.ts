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

/** A request's line by its id: its write-ahead line (`phase: "sent"`, no status yet), or its outcome. */
export function requestLine(id: string, phase?: 'sent'): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id,
    agent: 'a',
    grant: 'g',
    decision: 'inject',
    code: null,
    method: 'GET',
    host: 'api.example.test',
    port: 443,
    path: '/p',
    status: phase === 'sent' ? null : 200,
    duration_ms: 1,
    refreshed: false,
    client: '127.0.0.1',
    ...(phase === 'sent' ? { phase } : {}),
  };
}

/** A log's lines as `id` (an outcome) or `id:sent` (a write-ahead line), in file order. */
export function lineIds(logText: string): string[] {
  return logText
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const line = JSON.parse(l) as { id: string; phase?: string };
      return line.id + (line.phase === 'sent' ? ':sent' : '');
    });
}
