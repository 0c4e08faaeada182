// A chain's head row (keyway_audit_head): `{seq, hash, mac}` of its last line, as head.ts keeps it
// in a file for the file sink, with the same MAC (the audit head key, which the database never sees).

import { timingSafeEqual } from 'node:crypto';
import type { ClientBase } from 'pg';
import { headMac, type ChainHead, type HeadState } from '../head.ts';

interface HeadRow {
  seq: string;
  hash: string;
  mac: string;
}

/** Reads and authenticates one replica's head row; 'missing' when it has none. */
export async function readTableHead(client: ClientBase, replica: string, key: Buffer): Promise<HeadState> {
  const { rows } = await client.query<HeadRow>('SELECT seq::text AS seq, hash, mac FROM keyway_audit_head WHERE replica = $1', [replica]);
  const row = rows[0];
  return row === undefined ? { kind: 'missing' } : authenticate(row, key);
}

/** Every head row, authenticated, by replica. */
export async function readTableHeads(client: ClientBase, key: Buffer): Promise<Map<string, HeadState>> {
  const { rows } = await client.query<HeadRow & { replica: string }>('SELECT replica, seq::text AS seq, hash, mac FROM keyway_audit_head');
  return new Map(rows.map((row) => [row.replica, authenticate(row, key)]));
}

function authenticate(row: HeadRow, key: Buffer): HeadState {
  const seq = Number(row.seq);
  if (!Number.isSafeInteger(seq)) return { kind: 'unreadable' };
  const head: ChainHead = { seq, hash: row.hash };
  const want = Buffer.from(headMac(key, head), 'hex');
  const got = Buffer.from(row.mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want) ? { kind: 'ok', head } : { kind: 'bad_mac', head };
}
