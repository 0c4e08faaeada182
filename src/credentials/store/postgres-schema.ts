// The PostgreSQL store's schema, versioned. Each migration runs once, in order, inside one
// transaction that holds a transaction-level advisory lock, so several replicas starting at once
// (or `keyway store migrate` beside a running proxy) apply each step exactly once and the others
// wait, then see it applied.
//
// What the database holds is what the file store holds: each record sealed on its own with
// AES-256-GCM, the record id bound in as associated data (format.ts), as base64 nonce, ciphertext
// and tag. Ids and versions are the only plaintext. The master key never reaches the database.

import type { ClientBase } from 'pg';
import { KeywayError } from '../../errors/index.ts';

/** pg_advisory_xact_lock key for migrations ("keyway" in ASCII, as a number). */
export const MIGRATION_LOCK = 0x6b6579776179;
/** pg_advisory_xact_lock key held by every write: the database's form of the file store's lock. */
export const STORE_WRITE_LOCK = 0x6b6579776172;
/** First half of each grant's refresh lock, pg_advisory_lock(int4, int4): 32 bits of a hash of the grant id are the second. */
export const REFRESH_LOCK_SPACE = 0x6b657972;
/** The channel writes NOTIFY on; the payload is the new generation. */
export const STORE_CHANNEL = 'keyway_store';

const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE keyway_records (
        id text PRIMARY KEY,
        nonce text NOT NULL,
        ciphertext text NOT NULL,
        tag text NOT NULL,
        -- Compare-and-set: a write names the version it read and fails if another got there first.
        version bigint NOT NULL DEFAULT 1,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      -- One row: bumped by every write, so a replica can tell with one small read whether to re-read.
      CREATE TABLE keyway_store_generation (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        generation bigint NOT NULL
      );
      INSERT INTO keyway_store_generation (generation) VALUES (0);
    `,
  },
  {
    // audit.sink: postgres (src/audit/table/). One hash chain per replica: each row is one sealed
    // audit line, exactly as the file would hold it; seq and ts are copied out of it for ordering.
    // The head of each chain is kept beside it with a MAC by the audit head key (derived from the
    // master key, which never reaches the database), written in the same statement as the lines,
    // so a database writer without the key cannot cut or rewrite a chain without verify noticing.
    version: 2,
    sql: `
      CREATE TABLE keyway_audit (
        replica text NOT NULL,
        seq bigint NOT NULL,
        event_id text NOT NULL UNIQUE,
        ts timestamptz NOT NULL,
        line text NOT NULL,
        PRIMARY KEY (replica, seq)
      );
      CREATE INDEX keyway_audit_ts ON keyway_audit (ts, replica, seq);
      CREATE TABLE keyway_audit_head (
        replica text PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL,
        mac text NOT NULL
      );
    `,
  },
  {
    // Signed checkpoints of each replica's chain (src/audit/checkpoints/): the line as the file
    // form holds it, which anyone with keyway's public key can check.
    version: 3,
    sql: `
      CREATE TABLE keyway_audit_checkpoint (
        replica text NOT NULL,
        seq bigint NOT NULL,
        line text NOT NULL,
        PRIMARY KEY (replica, seq)
      );
    `,
  },
  {
    // The master key wrapped by a KMS (store.key: {kms: …}): kept here, beside what it seals, so every
    // replica unwraps the same key and a rotation (keyway key rotate) changes it for all in the
    // transaction that seals every record again. Only the KMS's ciphertext: never the key.
    version: 4,
    sql: `
      CREATE TABLE keyway_master_key (
        slot text PRIMARY KEY,
        kms text NOT NULL,
        key_id text NOT NULL,
        ciphertext text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** Applies the migrations this database lacks; returns the versions applied (none: already current). */
export async function migrate(client: ClientBase): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS keyway_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM keyway_schema');
    const current = rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new KeywayError(
        'store_unavailable',
        `the database's keyway schema is version ${current}; this keyway knows up to ${SCHEMA_VERSION}: upgrade keyway`,
      );
    }
    const applied: number[] = [];
    for (const step of MIGRATIONS.filter((m) => m.version > current)) {
      await client.query(step.sql);
      await client.query('INSERT INTO keyway_schema (version) VALUES ($1)', [step.version]);
      applied.push(step.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
