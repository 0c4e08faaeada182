// `keyway audit verify` for audit.sink: postgres: walk each replica's chain in the table in seq order
// with the same checker as the file (chain.ts), then hold its end against the replica's head row.
//
// Everything is read in one REPEATABLE READ snapshot, so the rows and the heads are seen as of one
// moment even while replicas write. Since a writer puts its rows and its head in one statement, the
// head must name exactly the chain's last row: rows past the head were added by someone without the
// head key, rows missing before it were removed.

import { ChainChecker } from '../chain.ts';
import type { HeadState } from '../head.ts';
import { parseLine } from '../record.ts';
import { connectAudit, isMissingTable, tableUnavailable, type AuditDatabase } from './connection.ts';
import { readTableHeads } from './head-row.ts';
import type pg from 'pg';
import { eventIdColumn } from './session.ts';

export interface TableProblem {
  /** The chain (audit.replica) the problem is in. */
  replica: string;
  /** The row's seq; 0 for problems with the head row itself. */
  seq: number;
  reason: string;
}

export interface TableVerifyResult {
  ok: boolean;
  /** Rows read, over every chain. */
  lines: number;
  /** The chains checked (replica ids), sorted. */
  replicas: string[];
  problems: TableProblem[];
  /** The hash of the line at `pin`'s seq in its replica's chain, as verified; absent when not on the chain. */
  pinned?: string;
}

const PAGE = 1000;

/** `pin`: one replica's seq whose hash, as this verify walked it, the caller wants back (`pinned`). */
export async function verifyAuditTable(db: AuditDatabase, headKey: Buffer, pin?: { replica: string; seq: number }): Promise<TableVerifyResult> {
  let client: pg.Client | undefined;
  try {
    client = await connectAudit(db, 'keyway-audit-verify');
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const heads = await readTableHeads(client, headKey);
    const { rows } = await client.query<{ replica: string }>('SELECT DISTINCT replica FROM keyway_audit');
    const replicas = [...new Set([...rows.map((r) => r.replica), ...heads.keys()])].sort();
    const problems: TableProblem[] = [];
    let lines = 0;
    let pinned: string | undefined;
    for (const replica of replicas) {
      const chain = await verifyChain(client, replica, heads.get(replica) ?? { kind: 'missing' }, pin?.replica === replica ? pin.seq : undefined);
      lines += chain.lines;
      problems.push(...chain.problems);
      pinned ??= chain.pinned;
    }
    await client.query('COMMIT');
    const result: TableVerifyResult = { ok: problems.length === 0, lines, replicas, problems };
    if (pinned !== undefined) result.pinned = pinned;
    return result;
  } catch (err) {
    if (isMissingTable(err)) return { ok: true, lines: 0, replicas: [], problems: [] };
    throw tableUnavailable(err);
  } finally {
    await client?.end().catch(() => undefined);
  }
}

async function verifyChain(
  client: pg.Client,
  replica: string,
  head: HeadState,
  pin: number | undefined,
): Promise<{ lines: number; problems: TableProblem[]; pinned: string | undefined }> {
  const checker = new ChainChecker(head.kind === 'ok' ? { watch: head.head, pin } : { pin });
  let lines = 0;
  // Keyset pages by seq: bounded memory whatever the chain's length.
  for (let after = '0'; ; ) {
    const page = await client.query<{ seq: string; event_id: string; line: string }>(
      'SELECT seq::text AS seq, event_id, line FROM keyway_audit a WHERE replica = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3',
      [replica, after, PAGE],
    );
    for (const row of page.rows) {
      lines++;
      const seq = Number(row.seq);
      checker.feed(row.line, seq);
      const rec = parseLine(row.line);
      // The columns are copies made by the writer; a row whose columns disagree with its sealed
      // line was moved (to another chain or place) by hand.
      if (rec !== null && (rec.seq !== seq || (rec.replica ?? replica) !== replica || eventIdColumn(rec) !== row.event_id)) {
        checker.report(
          seq,
          `the row's replica, seq or event_id columns do not match its line (replica ${JSON.stringify(rec.replica)}, seq ${rec.seq}): moved by hand`,
        );
      }
    }
    const last = page.rows.at(-1);
    if (last === undefined || page.rows.length < PAGE) break;
    after = last.seq;
  }
  const end = checker.last;
  if (head.kind === 'missing') {
    if (end.seq > 0) checker.report(0, 'head row missing: a removed tail cannot be ruled out');
  } else if (head.kind === 'unreadable') {
    checker.report(0, 'head row unreadable');
  } else if (head.kind === 'bad_mac') {
    checker.report(0, 'head row tampered: its MAC does not match (or the head key is not the one that wrote it)');
  } else if (head.head.seq > end.seq) {
    checker.report(
      end.seq,
      `tail removed: the head row records seq ${head.head.seq} but the chain ends at seq ${end.seq} (${head.head.seq - end.seq} line(s) missing)`,
    );
  } else if (end.seq > head.head.seq) {
    checker.report(end.seq, `rows after the head: the head row records seq ${head.head.seq} but the chain runs to seq ${end.seq} (added without the head key)`);
  } else if (!checker.watchFound && head.head.seq > 0) {
    checker.report(end.seq, `the head row's seq ${head.head.seq} and hash are not on the chain: lines were replaced`);
  }
  return { lines, problems: checker.problems.map((p) => ({ replica, seq: p.line, reason: p.reason })), pinned: checker.pinned };
}
