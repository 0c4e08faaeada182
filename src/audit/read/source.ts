// Where the admin API reads the audit log (GET /api/audit and its live stream): the file's one chain
// (ordered by seq), or, with audit.sink: postgres, the table's chains, one per replica (ordered by
// time, then replica, then seq). Each gives pages with an opaque cursor, and stream lines with an
// event id a reconnect hands back (Last-Event-ID) to replay what it missed.

import { KeywayError } from '../../errors/index.ts';
import type { AuditFilter } from './filter.ts';
import { pageAudit, type AuditPage, type AuditPageRequest } from './page.ts';
import { readAudit, tailAudit, type TailOptions } from './query.ts';
import { oneEntryPerRequest, withoutWriteAhead } from './requests.ts';
import type { AuditLine } from '../record.ts';
import type { AuditDatabase } from '../table/connection.ts';
import { readTableEntries, tailTableEntries, type TableEntry, type TablePosition } from '../table/read.ts';

/** A line for a live stream: its event id, and the chain whose seq orders it (for dropping repeats). */
export interface StreamLine {
  line: AuditLine;
  id: string;
  chain: string;
}

export interface AuditSource {
  page(request: AuditPageRequest): Promise<AuditPage>;
  /** New lines from now on (the feed behind every stream). */
  follow(opts: TailOptions): AsyncGenerator<StreamLine>;
  /** Whether a Last-Event-ID is one this source gives. */
  isEventId(text: string): boolean;
  /** Matching lines after that event id, oldest first. */
  replay(after: string, filter: AuditFilter): AsyncGenerator<StreamLine>;
}

/** The hash-chained file: the event id is the seq. */
export function fileSource(path: string): AuditSource {
  const streamLine = (line: AuditLine): StreamLine => ({ line, id: String(line.seq), chain: '' });
  return {
    page: (request) => pageAudit(path, request),
    async *follow(opts) {
      for await (const line of tailAudit(path, { ...opts, perRequest: true })) yield streamLine(line);
    },
    isEventId: (text) => /^\d{1,15}$/.test(text),
    async *replay(after, filter) {
      for await (const line of readAudit(path, filter, { after: Number(after) })) yield streamLine(line);
    },
  };
}

/** The table: ids and cursors are a line's place (ts, replica, seq), base64url. */
export function tableSource(db: AuditDatabase): AuditSource {
  return {
    async page(request) {
      const after = request.cursor === undefined ? undefined : decodeCursor(request.cursor, request.order);
      const lines: TableEntry[] = [];
      const entries = readTableEntries(db, request.filter, { order: request.order, after });
      for await (const entry of withoutWriteAhead(entries)) {
        lines.push(entry);
        if (lines.length > request.limit) break;
      }
      const page = lines.slice(0, request.limit);
      const last = page.at(-1);
      return { lines: page.map((e) => e.line), next: lines.length > request.limit && last !== undefined ? encode(`${request.order}.`, last.at) : null };
    },
    async *follow(opts) {
      for await (const entry of tailTableEntries(db, { ...opts, perRequest: true })) yield tableLine(entry);
    },
    isEventId: (text) => decodePosition(text, '') !== undefined,
    async *replay(after, filter) {
      const position = decodePosition(after, '');
      for await (const entry of oneEntryPerRequest(readTableEntries(db, filter, { after: position }))) yield tableLine(entry);
    },
  };
}

function tableLine(entry: TableEntry): StreamLine {
  return { line: entry.line, id: encode('', entry.at), chain: entry.at.replica };
}

// Opaque to callers (they only hand it back), but not secret: an order, a time, a replica id, a seq.
function encode(prefix: string, at: TablePosition): string {
  return Buffer.from(`${prefix}${at.ts}|${at.seq}|${at.replica}`).toString('base64url');
}

const POSITION = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})\|(\d{1,18})\|([A-Za-z0-9._-]{1,63})$/;

function decodePosition(text: string, prefix: string): TablePosition | undefined {
  if (!/^[\w-]{1,200}$/.test(text)) return undefined;
  const decoded = Buffer.from(text, 'base64url').toString('utf8');
  if (!decoded.startsWith(prefix)) return undefined;
  const m = POSITION.exec(decoded.slice(prefix.length));
  return m ? { ts: m[1] as string, seq: m[2] as string, replica: m[3] as string } : undefined;
}

function decodeCursor(cursor: string, order: 'asc' | 'desc'): TablePosition {
  const position = decodePosition(cursor, `${order}.`);
  if (position !== undefined) return position;
  const other = order === 'asc' ? 'desc' : 'asc';
  if (decodePosition(cursor, `${other}.`) !== undefined) {
    throw new KeywayError('usage', `cursor: it pages the ${other} order; ask with order=${other} or start again without one`);
  }
  throw new KeywayError('usage', 'cursor: not a cursor this API gave; start again without one');
}
