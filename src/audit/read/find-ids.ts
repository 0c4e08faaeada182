// Whether a line with one of some ids is in the audit log: how the next open tells that an owed
// line was written by a writer killed before it could remove its note (app/owed-key-lines.ts) or
// its owed-line: record (app/owed-change-lines.ts).
// The table looks the ids up in its event_id index. The file is read back from its end, through the
// rotated files, until its lines are older than the line can be (with a margin for lines appended
// out of time order, kept through a fault and written late).
import { connectAudit, isMissingTable, tableUnavailable, type AuditDatabase } from '../table/connection.ts';
import { readAuditBackwards } from './reverse.ts';

const OUT_OF_ORDER_MS = 60 * 60_000;

/** Whether a line with one of these ids is in the audit log; `since`: the line is no older (a bound for reading back). */
export type LineFinder = (ids: readonly string[], since: Date) => Promise<boolean>;

/** In the file log at `path` (and its rotated files): a line with one of `ids`, written at `since` or later. */
export async function fileHasLine(path: string, ids: readonly string[], since: Date): Promise<boolean> {
  const wanted = new Set(ids);
  const older = since.getTime() - OUT_OF_ORDER_MS;
  for await (const line of readAuditBackwards(path)) {
    if (wanted.has(line.id)) return true;
    if (Date.parse(line.ts) < older) return false;
  }
  return false;
}

/** In the audit table (every chain): a line with one of `ids`. */
export async function tableHasLine(db: AuditDatabase, ids: readonly string[]): Promise<boolean> {
  let client: Awaited<ReturnType<typeof connectAudit>>;
  try {
    client = await connectAudit(db, 'keyway-audit-find');
  } catch (err) {
    throw tableUnavailable(err);
  }
  try {
    const { rows } = await client.query('SELECT 1 FROM keyway_audit WHERE event_id = ANY($1::text[]) LIMIT 1', [ids]);
    return rows.length > 0;
  } catch (err) {
    if (isMissingTable(err)) return false;
    throw tableUnavailable(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}
