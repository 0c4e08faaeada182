// Reading the audit table for people (audit.sink: postgres): `keyway audit query` and `tail [-f]`,
// and the admin API's pages and live stream. Lines of every replica, ordered by time, then replica,
// then seq: each line's place in that order (TablePosition) is what a page cursor or a stream's
// event id holds. Rows that do not parse are skipped here; reporting them is verify's job.

import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { compileFilter, type AuditFilter } from '../read/filter.ts';
import { parseLine, type AuditLine } from '../record.ts';
import type { TailOptions } from '../read/query.ts';
import { connectAudit, isMissingTable, tableUnavailable, type AuditDatabase } from './connection.ts';
import { lastRequests } from '../read/requests.ts';

const PAGE = 1000;

/** A row's place in the table's order: its ts (UTC, microseconds, as the column holds it), replica and seq. */
export interface TablePosition {
  ts: string;
  replica: string;
  seq: string;
}

/** A line with its place in the order. */
export interface TableEntry {
  line: AuditLine;
  at: TablePosition;
}

export interface TableRange {
  /** asc (default): oldest first; desc: newest first. */
  order?: 'asc' | 'desc' | undefined;
  /** Only rows strictly after this place in `order`. */
  after?: TablePosition | undefined;
}

interface Row extends TablePosition {
  line: string;
}

// Read from `keyway_audit a`; ORDER BY names a.* because the text aliases here would sort as text.
const COLUMNS = `to_char(a.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS ts, a.replica, a.seq::text AS seq, a.line`;

/** Lines matching every filter field, oldest first. */
export async function* readAuditTable(db: AuditDatabase, filter: AuditFilter = {}): AsyncGenerator<AuditLine> {
  for await (const entry of readTableEntries(db, filter)) yield entry.line;
}

/** since/until are applied in the query (the ts index), the other filters as for the file. */
export async function* readTableEntries(db: AuditDatabase, filter: AuditFilter = {}, range: TableRange = {}): AsyncGenerator<TableEntry> {
  const match = compileFilter(filter);
  const desc = range.order === 'desc';
  const client = await connect(db);
  try {
    const since = filter.since?.toISOString() ?? null;
    const until = filter.until?.toISOString() ?? null;
    // Keyset pages on (ts, replica, seq): a page boundary stays put while rows are added.
    let after = range.after;
    for (;;) {
      const page = await query<Row>(
        client,
        `SELECT ${COLUMNS} FROM keyway_audit a
         WHERE ($1::timestamptz IS NULL OR a.ts >= $1) AND ($2::timestamptz IS NULL OR a.ts < $2)
           AND ($3::timestamp IS NULL OR (a.ts AT TIME ZONE 'UTC', a.replica, a.seq) ${desc ? '<' : '>'} ($3::timestamp, $4::text, $5::bigint))
         ORDER BY a.ts ${desc ? 'DESC' : ''}, a.replica ${desc ? 'DESC' : ''}, a.seq ${desc ? 'DESC' : ''} LIMIT ${PAGE}`,
        [since, until, after?.ts ?? null, after?.replica ?? null, after?.seq ?? null],
      );
      for (const entry of entries(page)) if (match(entry.line)) yield entry;
      after = page.at(-1);
      if (page.length < PAGE) return;
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The last `lines` lines, then (with `follow`) each line committed later. */
export async function* tailAuditTable(db: AuditDatabase, opts: TailOptions): AsyncGenerator<AuditLine> {
  for await (const entry of tailTableEntries(db, opts)) yield entry.line;
}

/**
 * Following polls the head rows (one per replica, written in the same statement as the lines) and
 * reads, for each chain that moved, the rows past where it was: by (replica, seq), which a commit
 * never goes back on, so a line committed late with an earlier ts is not missed.
 */
export async function* tailTableEntries(db: AuditDatabase, opts: TailOptions): AsyncGenerator<TableEntry> {
  const client = await connect(db);
  try {
    // The last lines and the chains' ends as of one moment: nothing between them is missed or shown twice.
    await query(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const last =
      opts.lines === 0
        ? []
        : await query<Row>(client, `SELECT ${COLUMNS} FROM keyway_audit a ORDER BY a.ts DESC, a.replica DESC, a.seq DESC LIMIT $1`, [
            opts.perRequest ? opts.lines * 2 : opts.lines,
          ]);
    const known = await heads(client);
    await query(client, 'COMMIT');
    opts.onPositioned?.();
    const initial = entries(last.toReversed());
    yield* opts.perRequest ? lastRequests(initial, opts.lines) : initial;
    const interval = opts.intervalMs ?? 250;
    while (opts.follow && opts.signal?.aborted !== true) {
      try {
        await sleep(interval, undefined, opts.signal === undefined ? {} : { signal: opts.signal });
      } catch {
        return; // aborted
      }
      const fresh: Row[] = [];
      for (const [replica, seq] of await heads(client)) {
        const from = known.get(replica) ?? 0n;
        if (seq <= from) continue;
        const rows = await query<Row>(client, `SELECT ${COLUMNS} FROM keyway_audit a WHERE a.replica = $1 AND a.seq > $2 ORDER BY a.seq LIMIT ${PAGE}`, [
          replica,
          String(from),
        ]);
        const end = rows.at(-1);
        if (end !== undefined) known.set(replica, BigInt(end.seq));
        fresh.push(...rows);
      }
      const followed = entries(fresh.sort(compareRows));
      yield* opts.perRequest ? followed.filter((e) => e.line.phase !== 'sent') : followed;
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function compareRows(a: TablePosition, b: TablePosition): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.replica !== b.replica) return a.replica < b.replica ? -1 : 1;
  return Number(a.seq) - Number(b.seq);
}

async function heads(client: pg.Client): Promise<Map<string, bigint>> {
  const rows = await query<{ replica: string; seq: string }>(client, 'SELECT replica, seq::text AS seq FROM keyway_audit_head');
  return new Map(rows.map((r) => [r.replica, BigInt(r.seq)]));
}

function entries(rows: readonly Row[]): TableEntry[] {
  const out: TableEntry[] = [];
  for (const { line: text, ...at } of rows) {
    const line = parseLine(text);
    if (line !== null) out.push({ line, at });
  }
  return out;
}

async function connect(db: AuditDatabase): Promise<pg.Client> {
  try {
    return await connectAudit(db, 'keyway-audit-read');
  } catch (err) {
    throw tableUnavailable(err);
  }
}

/** A query whose failure says so in one line; a database with no audit table yet has no rows. */
async function query<T extends pg.QueryResultRow>(client: pg.Client, sql: string, params: unknown[] = []): Promise<T[]> {
  try {
    return (await client.query<T>(sql, params)).rows;
  } catch (err) {
    if (isMissingTable(err)) return [];
    throw tableUnavailable(err);
  }
}
