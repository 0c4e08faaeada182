// Connections to the audit table's database (audit.sink: postgres), and how their failures are told.
// The tables themselves are made by the store's migrations (credentials/store/postgres-schema.ts,
// version 2), which every keyway on a postgres store runs at start.

import { createHash } from 'node:crypto';
import type pg from 'pg';
import { loadPg } from '../../net/pg.ts';
import type { Config } from '../../config/index.ts';
import { readSecretRef } from '../../config/secret-ref.ts';
import { KeywayError } from '../../errors/index.ts';

export interface AuditDatabase {
  /** postgres://… (the resolved store.url). Never written into a message. */
  url: string;
  /** store.statement_timeout: the longest one statement may run. */
  statementTimeoutMs?: number | undefined;
}

/** Where the audit lines are kept when audit.sink is postgres (the store's database); null for the file. */
export function auditDatabaseOf(config: Config, env: NodeJS.ProcessEnv): AuditDatabase | null {
  if (config.audit.sink !== 'postgres' || config.store.url === undefined) return null;
  return { url: readSecretRef(config.store.url, env, config.home), statementTimeoutMs: config.store.statement_timeout };
}

/**
 * A client of its own (not a pool): the writer's session holds the chain's lock for as long as it
 * lives. query_timeout (client side) backs the server's statement_timeout for a database that stops
 * answering without closing the connection.
 */
export async function connectAudit(db: AuditDatabase, name: string): Promise<pg.Client> {
  const timeout = db.statementTimeoutMs ?? 5_000;
  const { Client } = await loadPg();
  const client = new Client({
    connectionString: db.url,
    application_name: name,
    connectionTimeoutMillis: 5_000,
    statement_timeout: timeout,
    query_timeout: timeout + 1_000,
  });
  // A connection dropped by the database must not crash the process; callers see the failed query.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/** pg's messages are the server's or the socket's, never the connection string; the code names the cause. */
export function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message.split('\n')[0] : undefined;
  return code && message ? `${message} (${code})` : (code ?? message ?? 'unknown error');
}

/** For the commands that read the table: the database could not be used. */
export function tableUnavailable(err: unknown): KeywayError {
  if (err instanceof KeywayError) return err;
  return new KeywayError('store_unavailable', `the audit table in the store's database cannot be read: ${reasonOf(err)}`, { cause: err });
}

/** undefined_table: a database keyway has never started on (no migration yet) holds no audit lines. */
export function isMissingTable(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '42P01';
}

/** First half of each chain's writer lock, pg_advisory_lock(int4, int4) ("keya"). */
export const AUDIT_LOCK_SPACE = 0x6b657961;

/** A replica's half of its chain lock: 32 bits of SHA-256 of its id (independent of the server's hashing). */
export function chainLockKey(replica: string): number {
  return createHash('sha256').update(replica).digest().readInt32BE(0);
}
