// The audit log a page at a time, for the admin API (GET /api/audit). Pages are ordered by `seq`,
// which the writer only ever increases along the chain, so a page boundary is a seq and stays put
// while lines are appended or files rotate: no line is shown twice or skipped between pages.

import { KeywayError } from '../../errors/index.ts';
import type { AuditFilter } from './filter.ts';
import { readAudit } from './query.ts';
import { withoutWriteAhead } from './requests.ts';
import { readAuditBackwards } from './reverse.ts';
import type { AuditLine } from '../record.ts';

export type AuditOrder = 'desc' | 'asc';

export interface AuditPageRequest {
  filter: AuditFilter;
  /** Lines per page, 1 to MAX_AUDIT_PAGE. */
  limit: number;
  /** `desc`: newest first (the default: what a person looking at the log wants first); `asc`: oldest first, as `keyway audit query` prints. */
  order: AuditOrder;
  /** The `next` of the previous page; its order must be this request's. */
  cursor?: string | undefined;
}

export interface AuditPage {
  lines: AuditLine[];
  /** Where the next page starts; null when there were no more matching lines. */
  next: string | null;
}

export const MAX_AUDIT_PAGE = 1000;

/**
 * One page of matching lines: the chain read from the cursor on (backwards for newest first), until
 * the page is full and one more line says whether there is a next page.
 */
export async function pageAudit(path: string, request: AuditPageRequest): Promise<AuditPage> {
  const { limit, order } = request;
  const position = request.cursor === undefined ? undefined : decodeCursor(request.cursor, order);
  if (order === 'asc') {
    const lines: AuditLine[] = [];
    for await (const line of readAudit(path, request.filter, { after: position })) {
      lines.push(line);
      if (lines.length > limit) break;
    }
    return finish(lines, limit, order);
  }
  const lines: AuditLine[] = [];
  for await (const line of withoutWriteAhead(readAuditBackwards(path, request.filter, position))) {
    lines.push(line);
    if (lines.length > limit) break;
  }
  return finish(lines, limit, order);
}

/** `lines` holds up to limit + 1 in page order: the extra one only says there is a next page. */
function finish(lines: AuditLine[], limit: number, order: AuditOrder): AuditPage {
  const page = lines.slice(0, limit);
  const last = page.at(-1);
  return { lines: page, next: lines.length > limit && last !== undefined ? encodeCursor(order, last.seq) : null };
}

// Opaque to callers (they only hand it back), but not secret: it is the order and a seq.
function encodeCursor(order: AuditOrder, seq: number): string {
  return Buffer.from(`${order}.${seq}`).toString('base64url');
}

function decodeCursor(cursor: string, order: AuditOrder): number {
  const text = /^[\w-]{1,40}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const m = /^(asc|desc)\.(\d{1,15})$/.exec(text);
  if (!m) throw new KeywayError('usage', 'cursor: not a cursor this API gave; start again without one');
  if (m[1] !== order) throw new KeywayError('usage', `cursor: it pages the ${m[1]} order; ask with order=${m[1]} or start again without one`);
  return Number(m[2]);
}
