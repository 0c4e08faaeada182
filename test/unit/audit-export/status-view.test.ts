// What status and /readyz say of an audit.export target: the host, never the URL; a receiver down
// past a minute is a warning, never a failed check.
import { describe, expect, it } from 'vitest';
import type { ExportStatus } from '../../../src/audit-export/exporter.ts';
import { exportViews, exportWarning, FAILING_WARN_MS } from '../../../src/audit-export/status-view.ts';
import { readinessAnswer } from '../../../src/admin/operate-routes.ts';
import { readinessOf } from '../../../src/admin/readiness.ts';

const T0 = Date.parse('2026-11-29T15:00:00Z');

function status(over: Partial<ExportStatus> = {}): ExportStatus {
  return {
    format: 'ocsf',
    to: 'https://hec.example.com:8088/services/collector/raw?channel=SECRET-CHANNEL',
    sent_seq: 10,
    behind: 0,
    sent: 10,
    failures: 0,
    missed: 0,
    error: null,
    last_success: new Date(T0).toISOString(),
    last_error: null,
    last_error_at: null,
    failing_since: null,
    ...over,
  };
}

describe('export status views', () => {
  it('name the target by place and host, never the path or query', () => {
    const [view] = exportViews([status()]);
    expect(view).toMatchObject({ target: 'audit.export[0]', host: 'hec.example.com:8088', format: 'ocsf' });
    expect(JSON.stringify(view)).not.toMatch(/SECRET|collector|channel/);
  });

  it('warn only once a target has failed for a minute, and never fail /readyz', () => {
    const failing = status({
      error: 'ECONNREFUSED',
      last_error: 'ECONNREFUSED',
      last_error_at: new Date(T0).toISOString(),
      failing_since: new Date(T0).toISOString(),
      behind: 42,
    });
    const views = exportViews([status(), failing]);
    expect(exportWarning(views, new Date(T0 + FAILING_WARN_MS - 1))).toBeNull();
    const warning = exportWarning(views, new Date(T0 + 3 * 60_000));
    expect(warning).toContain('audit.export[1] (hec.example.com:8088) failing for 3m (ECONNREFUSED), 42 lines behind');
    expect(warning).not.toMatch(/SECRET|collector/);
    const readiness = readinessOf({
      ca: { notAfter: new Date(T0 + 86_400_000) },
      store: { readError: undefined },
      audit: { healthy: true },
      exportWarning: (now) => exportWarning(views, now),
      now: () => new Date(T0 + 3 * 60_000),
    });
    const answer = readinessAnswer(readiness);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ ready: true, warnings: { audit_export: warning } });
  });
});
