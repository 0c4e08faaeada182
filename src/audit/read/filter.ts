// Which audit lines a reader wants: the filters of `keyway audit query` and of the admin API's
// GET /api/audit and its live stream. One parser for the text both take (flags, query parameters),
// so a filter means the same thing whichever door it came through.

import { KeywayError } from '../../errors/index.ts';
import type { AuditDecision, AuditLine } from '../record.ts';

export interface AuditFilter {
  agent?: string;
  grant?: string;
  decision?: AuditDecision;
  code?: string;
  /** Compared without regard to case. */
  host?: string;
  /** Lines at or after this time. */
  since?: Date;
  /** Lines before this time. */
  until?: Date;
}

export const AUDIT_DECISIONS: readonly AuditDecision[] = ['inject', 'tunnel', 'deny', 'error', 'admin', 'self_check', 'approval'];

/** The filters as text, as a command line or a query string gives them. */
export type AuditFilterText = Partial<Record<keyof AuditFilter, string | undefined>>;

/**
 * Parses filter text; `label` names a field in a message (`--since` on the command line, `since` in
 * the API). Throws KeywayError `usage` naming the field and what was expected; the bad value is
 * quoted only for the time fields, which are never secret.
 */
export function parseAuditFilter(text: AuditFilterText, label: (field: keyof AuditFilter) => string = (f) => f): AuditFilter {
  const filter: AuditFilter = {};
  const { decision } = text;
  if (decision !== undefined) {
    if (!AUDIT_DECISIONS.includes(decision as AuditDecision))
      throw new KeywayError('usage', `${label('decision')}: expected one of ${AUDIT_DECISIONS.join(', ')}`);
    filter.decision = decision as AuditDecision;
  }
  for (const key of ['agent', 'grant', 'code', 'host'] as const) {
    const value = text[key];
    if (value !== undefined) filter[key] = value;
  }
  const since = parseAuditTime(text.since, label('since'));
  if (since !== undefined) filter.since = since;
  const until = parseAuditTime(text.until, label('until'));
  if (until !== undefined) filter.until = until;
  return filter;
}

/** An ISO date, or a duration ago: "15m", "2h", "7d". */
export function parseAuditTime(text: string | undefined, label: string): Date | undefined {
  if (text === undefined) return undefined;
  const relative = /^(\d+)([smhd])$/.exec(text);
  if (relative) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(Date.now() - Number(relative[1]) * unit);
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new KeywayError('usage', `${label}: expected an ISO date or a duration such as 15m, got "${text.slice(0, 40)}"`);
  return date;
}

/** A predicate for lines matching every field of the filter. */
export function compileFilter(f: AuditFilter): (line: AuditLine) => boolean {
  const host = f.host?.toLowerCase();
  const since = f.since?.getTime();
  const until = f.until?.getTime();
  return (line) => {
    if (f.agent !== undefined && line.agent !== f.agent) return false;
    if (f.grant !== undefined && line.grant !== f.grant) return false;
    if (f.decision !== undefined && line.decision !== f.decision) return false;
    if (f.code !== undefined && line.code !== f.code) return false;
    if (host !== undefined && line.host.toLowerCase() !== host) return false;
    if (since !== undefined || until !== undefined) {
      const t = Date.parse(line.ts);
      if (Number.isNaN(t)) return false;
      if (since !== undefined && t < since) return false;
      if (until !== undefined && t >= until) return false;
    }
    return true;
  };
}
