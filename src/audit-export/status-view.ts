// What `keyway status`, /api/status and /readyz say of each audit.export target: its place in the
// config and its receiver's host (never the URL: a path or query may carry a tenant or token), how
// far behind it is, and its last success and failure.
//
// A receiver down never makes keyway unready, however long: the lines wait in the audit log itself
// (durable, chained, counted in `behind`), and an unready keyway is taken out of service, so a SIEM's
// outage would become an outage of every agent's requests. Past FAILING_WARN_MS of failures /readyz
// carries a warning (status stays 200) and /metrics the lag, for an alert to page on.

import type { ExportStatus } from './exporter.ts';

/** Failures shorter than this (a receiver's restart, a blip) are not worth a warning on /readyz. */
export const FAILING_WARN_MS = 60_000;

export interface ExportView {
  /** `audit.export[N]`, as /metrics labels it. */
  target: string;
  format: string;
  /** The receiver's host and port, as the URL names them. */
  host: string;
  /** The seq of the last line the receiver was given, and how many lines of the log are past it. */
  sent_seq: number;
  behind: number;
  missed: number;
  last_success: string | null;
  last_error: string | null;
  last_error_at: string | null;
  /** When the failures going on now began; null while sends succeed. */
  failing_since: string | null;
}

export function exportViews(statuses: readonly ExportStatus[]): ExportView[] {
  return statuses.map((s, i) => ({
    target: `audit.export[${i}]`,
    format: s.format,
    host: hostOf(s.to),
    sent_seq: s.sent_seq,
    behind: s.behind,
    missed: s.missed,
    last_success: s.last_success,
    last_error: s.last_error,
    last_error_at: s.last_error_at,
    failing_since: s.failing_since,
  }));
}

/** For /readyz's warnings: each target failing for longer than FAILING_WARN_MS, in one line; null when none is. */
export function exportWarning(views: readonly ExportView[], now: Date): string | null {
  const long = views.filter((v) => v.failing_since !== null && now.getTime() - Date.parse(v.failing_since) >= FAILING_WARN_MS);
  if (long.length === 0) return null;
  const each = long.map((v) => {
    const minutes = Math.floor((now.getTime() - Date.parse(v.failing_since!)) / 60_000);
    return `${v.target} (${v.host}) failing for ${minutes}m (${v.last_error}), ${v.behind} lines behind`;
  });
  return `${each.join('; ')}: the lines wait in the audit log and are sent when the receiver is back (not a failed check: a SIEM down does not stop the proxy)`;
}

function hostOf(to: string): string {
  try {
    return new URL(to).host;
  } catch {
    return 'unknown';
  }
}
