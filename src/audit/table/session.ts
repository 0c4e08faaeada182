// One writer's session on a replica's chain in the audit table: the connection that holds the
// chain's lock, where the chain ends, and the one statement that appends a batch.
//
// The lock is a session advisory lock per replica: while this connection lives no other keyway with
// the same replica id can write the chain, and a writer that dies (kill -9, a lost network) loses its
// session and with it the lock, so the next one resumes at once. Every write goes through this same
// connection, so lines are only ever written by the lock's holder.

import type pg from 'pg';
import { KeywayError } from '../../errors/index.ts';
import { headMac, type ChainHead } from '../head.ts';
import { GENESIS_HASH, sealLine } from '../record.ts';
import { AUDIT_LOCK_SPACE, chainLockKey, connectAudit, type AuditDatabase } from './connection.ts';
import { readTableHead } from './head-row.ts';
import type { AuditEvent } from '../record.ts';

/** A line waiting for its place in the chain: its serialised event and what the table copies out of it. */
export interface TableLine {
  body: string;
  /** The event's id (event_id, unique): how a retry finds lines an uncertain commit already wrote. */
  id: string;
  /** ISO time for the ts column. */
  ts: string;
}

export class ChainSession {
  readonly #client: pg.Client;
  readonly #replica: string;
  readonly #key: Buffer;
  #head: ChainHead;
  #lost = false;

  private constructor(client: pg.Client, replica: string, key: Buffer, head: ChainHead) {
    this.#client = client;
    this.#replica = replica;
    this.#key = key;
    this.#head = head;
    client.on('error', () => (this.#lost = true));
    client.on('end', () => (this.#lost = true));
  }

  /**
   * Connects, takes the chain's lock (`chain_taken` if another session holds it) and finds where the
   * chain goes on. It links only to what keyway itself sealed: the authenticated head, or `floor`
   * (what this process wrote last), whichever is further, so rows removed since show as a gap. Rows
   * past that point can only have been added by a writer without the head key (this writer puts rows
   * and head in one statement): they are numbered past but not linked to, so verify reports them
   * instead of the chain adopting them.
   */
  static async open(db: AuditDatabase, replica: string, key: Buffer, floor: ChainHead | null, onLost: () => void): Promise<ChainSession> {
    const client = await connectAudit(db, 'keyway-audit');
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [AUDIT_LOCK_SPACE, chainLockKey(replica)]);
      if (rows[0]?.locked !== true) throw chainTaken(replica);
      const candidates: ChainHead[] = [{ seq: 0, hash: GENESIS_HASH }];
      if (floor !== null) candidates.push(floor);
      const stored = await readTableHead(client, replica, key);
      if (stored.kind === 'ok') candidates.push(stored.head);
      const trusted = candidates.reduce((best, c) => (c.seq > best.seq ? c : best));
      const last = await client.query<{ seq: string }>('SELECT max(seq)::text AS seq FROM keyway_audit WHERE replica = $1', [replica]);
      const lastSeq = Number(last.rows[0]?.seq ?? 0);
      const head = lastSeq > trusted.seq ? { seq: lastSeq, hash: trusted.hash } : trusted;
      const session = new ChainSession(client, replica, key, head);
      client.on('error', onLost);
      client.on('end', onLost);
      return session;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  get head(): ChainHead {
    return this.#head;
  }

  /** The connection broke: the lock may be gone, so this session must not write again. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Of these event ids, the ones already in the table (written by a commit whose answer was lost). */
  async written(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.#client.query<{ event_id: string }>('SELECT event_id FROM keyway_audit WHERE replica = $1 AND event_id = ANY($2::text[])', [
      this.#replica,
      ids,
    ]);
    return new Set(rows.map((r) => r.event_id));
  }

  /**
   * Seals the lines after the head and writes them and the new head (MAC'd) in one statement: both
   * or neither. Returns the new head; the session's head moves only once the database said yes.
   */
  async append(lines: readonly TableLine[]): Promise<ChainHead> {
    if (this.#lost) throw new Error('the audit database connection was lost');
    let { seq, hash } = this.#head;
    const seqs: string[] = [];
    const ids: string[] = [];
    const times: string[] = [];
    const texts: string[] = [];
    for (const line of lines) {
      seq += 1;
      const sealed = sealLine(line.body, seq, hash);
      hash = sealed.hash;
      seqs.push(String(seq));
      ids.push(line.id);
      times.push(line.ts);
      texts.push(sealed.line.slice(0, -1)); // the row is the line without its newline
    }
    const head = { seq, hash };
    // A data-modifying CTE always runs: the rows and the head go in as one atomic statement.
    await this.#client.query(
      `WITH added AS (
         INSERT INTO keyway_audit (replica, seq, event_id, ts, line)
         SELECT $1, s, i, t, l FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::text[]) AS u(s, i, t, l)
       )
       INSERT INTO keyway_audit_head (replica, seq, hash, mac) VALUES ($1, $6, $7, $8)
       ON CONFLICT (replica) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac`,
      [this.#replica, seqs, ids, times, texts, String(head.seq), head.hash, headMac(this.#key, head)],
    );
    this.#head = head;
    return head;
  }

  /** A signed checkpoint of this chain, kept beside it (one per seq: a second for the same seq is the same). */
  async checkpoint(seq: number, line: string): Promise<void> {
    if (this.#lost) throw new Error('the audit database connection was lost');
    await this.#client.query('INSERT INTO keyway_audit_checkpoint (replica, seq, line) VALUES ($1, $2, $3) ON CONFLICT (replica, seq) DO NOTHING', [
      this.#replica,
      String(seq),
      line,
    ]);
  }

  /** Ends the session, which releases the lock. */
  async end(): Promise<void> {
    this.#lost = true;
    await this.#client.end().catch(() => undefined);
  }
}

export function chainTaken(replica: string): KeywayError {
  return new KeywayError(
    'audit_invalid',
    `another keyway is writing the audit chain of replica "${replica}" in the database: give each replica its own audit.replica (the host name by default)`,
  );
}

export function isChainTaken(err: unknown): boolean {
  return err instanceof KeywayError && err.code === 'audit_invalid' && err.message.startsWith('another keyway is writing');
}

/**
 * The row's event_id (unique): the event's id, and for a write-ahead line (phase: sent) the id with
 * `.sent`, since its outcome line carries the same id (proxy/stages/audit-write-ahead.ts).
 */
export function eventIdColumn(event: Pick<AuditEvent, 'id' | 'phase'>): string {
  return event.phase === 'sent' ? `${event.id}.sent` : event.id;
}
