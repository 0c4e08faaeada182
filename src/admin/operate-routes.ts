// The admin listener's operational routes: /readyz (open, like /healthz) and /metrics (needs the
// admin token, like every route but the two probes: the README's "Admin API").

import type { ServerResponse } from 'node:http';

/** Why a part is not ready, or null when it is. */
export type Check = string | null;

/** What must hold before keyway should be sent traffic. */
export interface Readiness {
  /** The CA is loaded and within its validity: intercepted hosts get certificates clients trust. */
  ca: Check;
  /** The store is open and its file still reads with the master key. */
  store: Check;
  /** The audit log can take lines: without it every injected request is refused (503). */
  audit: Check;
  /** proxy.workers above 1: a worker serves, and none reports an audit log it cannot write. */
  workers?: Check;
  /**
   * What deserves a look but does not make keyway unready (audit.min_retention keeping files past
   * audit.keep): in the body, whatever the status. Absent when there is none.
   */
  warnings?: Record<string, string>;
}

/** The metrics as Prometheus reads them. */
export interface MetricsText {
  scrape(): Promise<{ contentType: string; text: string }>;
}

/** `/readyz`: 200 with every check ok, else 503 naming the first failing part as `reason`. */
export function readinessAnswer(readiness: Readiness): { status: number; body: unknown } {
  const { warnings, ...parts } = readiness;
  const checks = Object.fromEntries(Object.entries(parts).map(([part, problem]) => [part, problem ?? 'ok']));
  const failing = Object.entries(parts).find(([, problem]) => problem !== null);
  const extra = warnings === undefined ? {} : { warnings };
  if (!failing) return { status: 200, body: { ready: true, checks, ...extra } };
  return { status: 503, body: { ready: false, reason: `${failing[0]}: ${failing[1]}`, checks, ...extra } };
}

/** `/metrics`: the Prometheus text format. Nothing in it is secret (keyway-metrics.ts says why). */
export async function sendMetrics(res: ServerResponse, metrics: MetricsText): Promise<void> {
  const { contentType, text } = await metrics.scrape();
  res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
