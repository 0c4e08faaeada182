// The store on PostgreSQL, for several keyway replicas sharing grants (store.backend: postgres).
// It behaves as the file store does (store.ts), with the database in the file's place:
//   - reads come from memory, always: the request path never waits on the database, and a replica
//     keeps serving what it holds while the database is down;
//   - update() is read-modify-write in one transaction under an advisory lock, the database's form
//     of the file lock: it re-reads every row first, so a change another replica made is kept, and
//     writes only the records that changed, each compare-and-set on its version;
//   - every write bumps one generation counter and NOTIFYs it; watch() LISTENs, and also polls the
//     counter once a second in case a notification is lost (a dropped connection), so a change
//     reaches every replica within about a second.
// Rows hold what the file holds: records sealed one by one (format.ts), the id as associated data.

import { createHash } from 'node:crypto';
import type pg from 'pg';
import { loadPg } from '../../net/pg.ts';
import { KeywayError } from '../../errors/index.ts';
import { currentRider } from './change-rider.ts';
import { runDraft, type StoreDraft } from './draft.ts';
import {
  CHECK_ID,
  emptyStore,
  openStoreFile,
  resealStore,
  type OpenedStore,
  type SealedRecord,
  type StoreFile,
  CIPHER,
  FORMAT_NAME,
  FORMAT_VERSION,
} from './format.ts';
import { RecordsView, SerialQueue, StoreReads } from './records-view.ts';
import { migrate, REFRESH_LOCK_SPACE, SCHEMA_VERSION, STORE_CHANNEL, STORE_WRITE_LOCK } from './postgres-schema.ts';

export interface PostgresStoreOptions {
  /** Longest any statement may run; a hung database fails a write instead of holding it. */
  statementTimeoutMs?: number;
  /** Connections in the pool (store.pool_size). */
  poolSize?: number;
  /** How often watch() checks the generation when no notification came. */
  pollMs?: number;
  /**
   * The key as the database now holds it (keyway_master_key, wrapped by the KMS): asked when the
   * rows stop opening with the key in memory, so every replica follows a rotation another made.
   */
  reloadKey?: () => Promise<Buffer | undefined>;
}

interface Row {
  id: string;
  nonce: string;
  ciphertext: string;
  tag: string;
  version: string;
}

/** The URL as messages show it: never the password or the query (which may carry sslkey paths or secrets). */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `postgres://${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
  } catch {
    return 'the database (store.url)';
  }
}

function unavailable(where: string, err: unknown): KeywayError {
  // pg's own messages are the server's or the socket's, never the connection string; the code names the cause.
  const e = err as { code?: string; message?: string };
  const reason = e.code && e.message ? `${e.message} (${e.code})` : (e.code ?? e.message ?? 'unknown error');
  return new KeywayError('store_unavailable', `the store's database ${where} cannot be used: ${reason}`, { cause: err });
}

export class PostgresStore extends StoreReads {
  /** The database, as messages name it (no password). */
  readonly path: string;
  readonly #pool: pg.Pool;
  readonly #url: string;
  #key: Buffer;
  readonly #pollMs: number;
  #reloadKey: PostgresStoreOptions['reloadKey'];
  #dbGeneration = '0';
  #queue = new SerialQueue();
  #watch: { onChange: () => void; onError?: ((err: Error) => void) | undefined; timer: NodeJS.Timeout; listener?: pg.Client | undefined } | undefined;
  #reloading = false;
  #ended = false;

  private constructor(url: string, pool: pg.Pool, key: Buffer, state: OpenedStore, pollMs: number) {
    super(state);
    this.#url = url;
    this.path = describeDatabase(url);
    this.#pool = pool;
    this.#key = key;
    this.#pollMs = pollMs;
  }

  /** Connects, migrates (safe from several replicas at once), checks the key, reads every record. */
  static async open(url: string, key: Buffer, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const { Pool } = await loadPg();
    const pool = new Pool({
      connectionString: url,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: options.statementTimeoutMs ?? 5_000,
      application_name: 'keyway',
      // A command (`keyway grants list`) exits when done instead of waiting for idle connections to time out.
      allowExitOnIdle: true,
    });
    // An idle connection dropped by a restarting database must not crash the process: the next
    // query gets a fresh one, or fails and says so.
    pool.on('error', () => undefined);
    // Nor one dropped while checked out between two queries (the database stopped): pg emits it on
    // the client, which the pool listens to only while the client is idle; the query fails and says so.
    pool.on('connect', (client) => client.on('error', () => undefined));
    const store = new PostgresStore(url, pool, key, emptyStore(key), options.pollMs ?? 1_000);
    store.#reloadKey = options.reloadKey;
    try {
      const client = await pool.connect();
      try {
        await migrate(client);
        await store.#ensureCheck(client);
        await store.#reloadWith(client);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err instanceof KeywayError ? err : unavailable(store.path, err);
    }
    return store;
  }

  /**
   * Whether the database already holds a store (its check record), read without changing anything:
   * a start with no key must not make one for a store another key sealed.
   */
  static async holdsStore(url: string): Promise<boolean> {
    const { Client } = await loadPg();
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: 'keyway' });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ present: boolean }>("SELECT to_regclass('keyway_records') IS NOT NULL AS present");
      if (rows[0]?.present !== true) return false;
      const found = await client.query('SELECT 1 FROM keyway_records WHERE id = $1', [CHECK_ID]);
      return (found.rowCount ?? 0) > 0;
    } catch (err) {
      throw err instanceof KeywayError ? err : unavailable(describeDatabase(url), err);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Brings the schema up to date, nothing more (`keyway store migrate`); the master key is not needed. */
  static async migrate(url: string): Promise<{ applied: number[]; version: number }> {
    const { Client } = await loadPg();
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: 'keyway-migrate' });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const applied = await migrate(client);
      return { applied, version: SCHEMA_VERSION };
    } catch (err) {
      throw err instanceof KeywayError ? err : unavailable(describeDatabase(url), err);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Read-modify-write in one transaction under the store's advisory lock. Throws store_unavailable when the database is. */
  update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R> {
    // Read here, in the caller's context: the change (if any) this write belongs to.
    const rider = currentRider(this);
    return this.#writeTransaction(async (client) => {
      const base = await this.#readAll(client);
      const { result, changed } = await runDraft(base.state, fn, rider);
      if (!changed) return { result, state: base.state, generation: base.generation };
      const next = changed.commit(this.#key);
      await this.#writeChanges(client, base.state, next, base.versions);
      return { result, state: next, generation: await this.#bumpGeneration(client, base.generation) };
    });
  }

  /**
   * `fn` in one transaction under the store's write lock (the advisory lock every writer takes);
   * what it read or wrote is adopted once committed. A database failure is store_unavailable.
   */
  #writeTransaction<R>(fn: (client: pg.PoolClient) => Promise<{ result: R; state: OpenedStore; generation: string; key?: Buffer }>): Promise<R> {
    return this.#queue.run(async () => {
      let client: pg.PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (err) {
        throw unavailable(this.path, err);
      }
      let inTransaction = false;
      try {
        await client.query('BEGIN');
        inTransaction = true;
        await client.query('SELECT pg_advisory_xact_lock($1)', [STORE_WRITE_LOCK]);
        const done = await fn(client);
        await client.query('COMMIT');
        inTransaction = false;
        if (done.key) this.#key = done.key;
        this.#adopt(done.state, done.generation);
        return done.result;
      } catch (err) {
        if (inTransaction) await client.query('ROLLBACK').catch(() => undefined);
        if (err instanceof KeywayError || !isDatabaseFailure(err)) throw err;
        throw unavailable(this.path, err);
      } finally {
        client.release();
      }
    });
  }

  /** One more generation, told to every replica listening. */
  async #bumpGeneration(client: pg.PoolClient, current: string): Promise<string> {
    const bumped = await client.query<{ generation: string }>('UPDATE keyway_store_generation SET generation = generation + 1 RETURNING generation');
    const generation = bumped.rows[0]?.generation ?? current;
    await client.query('SELECT pg_notify($1, $2)', [STORE_CHANNEL, generation]);
    return generation;
  }

  /** LISTENs for other replicas' writes and polls the generation every pollMs as the fallback. */
  watch(onChange: () => void, _intervalMs?: number, onError?: (err: Error) => void): void {
    this.close();
    const timer = setInterval(() => void this.#checkGeneration(), this.#pollMs);
    timer.unref();
    this.#watch = { onChange, onError, timer };
    void this.#listen();
  }

  /**
   * The per-grant refresh lock, across replicas: a session advisory lock on a connection of its own,
   * held across one token call. A replica that dies mid-refresh loses its session, and with it the
   * lock, so the others go on at once. Waits up to `waitMs`, then fails (the request gets 502).
   */
  async acquireRefreshLock(grantId: string, waitMs: number): Promise<() => Promise<void>> {
    const { Client } = await loadPg();
    const client = new Client({ connectionString: this.#url, application_name: 'keyway-refresh-lock', connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      // lock_timeout bounds the wait; no statement timeout on this connection, which only waits.
      await client.query(`SET lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
      await client.query('SELECT pg_advisory_lock($1, $2)', [REFRESH_LOCK_SPACE, grantLockKey(grantId)]);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw unavailable(this.path, err);
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      // Ending the session releases the lock even when the unlock itself cannot be sent.
      await client.query('SELECT pg_advisory_unlock($1, $2)', [REFRESH_LOCK_SPACE, grantLockKey(grantId)]).catch(() => undefined);
      await client.end().catch(() => undefined);
    };
  }

  /** Stops watching; get() and update() still work. */
  close(): void {
    const watching = this.#watch;
    this.#watch = undefined;
    if (!watching) return;
    clearInterval(watching.timer);
    watching.listener?.end().catch(() => undefined);
  }

  /** Stops watching and closes every connection. */
  async end(): Promise<void> {
    this.#ended = true;
    this.close();
    await this.#pool.end().catch(() => undefined);
  }

  async #listen(): Promise<void> {
    const { Client } = await loadPg(); // loaded by open() already: resolves at once
    const watching = this.#watch;
    if (!watching || this.#ended) return;
    const listener = new Client({ connectionString: this.#url, application_name: 'keyway-listen', connectionTimeoutMillis: 5_000 });
    watching.listener = listener;
    let retried = false;
    // A lost connection loses notifications: the poll covers the gap, and a new listener is made.
    const retry = () => {
      if (retried || this.#watch !== watching || this.#ended) return;
      retried = true;
      setTimeout(() => void this.#listen(), this.#pollMs).unref();
    };
    listener.on('error', retry);
    listener.on('end', retry);
    listener.on('notification', () => void this.#reload());
    try {
      await listener.connect();
      await listener.query(`LISTEN ${STORE_CHANNEL}`);
      // Whatever was written while no one listened.
      void this.#reload();
    } catch {
      await listener.end().catch(() => undefined);
      retry();
    }
  }

  /** One query (the generation); every row re-read only when another replica wrote since. Throws store_unavailable. */
  async catchUp(): Promise<void> {
    try {
      const { rows } = await this.#pool.query<{ generation: string }>('SELECT generation::text AS generation FROM keyway_store_generation');
      if (rows[0]?.generation === this.#dbGeneration && !this.lastReadError) return;
      await this.#queue.run(async () => {
        const client = await this.#pool.connect();
        try {
          await this.#reloadWith(client);
        } finally {
          client.release();
        }
      });
    } catch (err) {
      throw err instanceof KeywayError ? err : unavailable(this.path, err);
    }
  }

  async #checkGeneration(): Promise<void> {
    try {
      const { rows } = await this.#pool.query<{ generation: string }>('SELECT generation FROM keyway_store_generation');
      if (rows[0]?.generation !== this.#dbGeneration || this.lastReadError) await this.#reload();
    } catch (err) {
      this.#report(unavailable(this.path, err));
    }
  }

  async #reload(): Promise<void> {
    if (this.#reloading) return;
    this.#reloading = true;
    try {
      await this.#queue.run(async () => {
        const client = await this.#pool.connect();
        try {
          await this.#reloadWith(client);
        } finally {
          client.release();
        }
      });
    } catch (err) {
      this.#report(err instanceof KeywayError ? err : unavailable(this.path, err));
    } finally {
      this.#reloading = false;
    }
  }

  async #reloadWith(client: pg.PoolClient): Promise<void> {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const read = await this.#readAll(client);
      await client.query('COMMIT');
      this.#adopt(read.state, read.generation);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Every row, decrypted (a row whose sealed bytes this replica already opened is reused). */
  async #readAll(client: pg.PoolClient): Promise<{ state: OpenedStore; versions: Map<string, string>; generation: string }> {
    const { rows } = await client.query<Row>('SELECT id, nonce, ciphertext, tag, version::text AS version FROM keyway_records');
    const gen = await client.query<{ generation: string }>('SELECT generation::text AS generation FROM keyway_store_generation');
    let check: SealedRecord | undefined;
    const records: Record<string, SealedRecord> = Object.create(null);
    const versions = new Map<string, string>();
    for (const row of rows) {
      const sealed = { n: row.nonce, c: row.ciphertext, t: row.tag };
      if (row.id === CHECK_ID) check = sealed;
      else {
        records[row.id] = sealed;
        versions.set(row.id, row.version);
      }
    }
    if (!check) throw new KeywayError('store_corrupt', `the store ${this.path} has no check record; restore it from a backup`);
    const file: StoreFile = { format: FORMAT_NAME, version: FORMAT_VERSION, cipher: CIPHER, check, records };
    // openStoreFile tells a wrong key (store_wrong_key) from a damaged record (store_corrupt), as for the file.
    return { state: await this.#openFollowingKey(file), versions, generation: gen.rows[0]?.generation ?? '0' };
  }

  /**
   * The rows opened; when they no longer open with the key in memory (another replica rotated it),
   * once more with the key as the database now holds it. Inside update() this runs under the write
   * lock, so nothing is ever sealed with the old key after a rotation committed.
   */
  async #openFollowingKey(file: StoreFile): Promise<OpenedStore> {
    try {
      return openStoreFile(this.path, this.#key, file, this.view.state);
    } catch (err) {
      if (!(err instanceof KeywayError) || err.code !== 'store_wrong_key' || this.#reloadKey === undefined) throw err;
      const key = await this.#reloadKey();
      if (key === undefined || key.equals(this.#key)) throw err;
      const state = openStoreFile(this.path, key, file);
      this.#key = key;
      return state;
    }
  }

  /**
   * keyway key rotate on the database: every record and the check sealed again under `key`, and the
   * wrapped key replaced, in one transaction under the write lock. Other replicas follow on their next
   * read (#openFollowingKey). Returns how many records were sealed again.
   */
  rotateKey(key: Buffer, wrapped: { kms: string; key_id: string; ciphertext: string }): Promise<number> {
    return this.#writeTransaction(async (client) => {
      const base = await this.#readAll(client);
      const next = resealStore(base.state, key);
      for (const [id, record] of next.records) {
        const { n, c, t } = record.sealed;
        const updated = await client.query(
          'UPDATE keyway_records SET nonce = $2, ciphertext = $3, tag = $4, version = version + 1, updated_at = now() WHERE id = $1 AND version = $5',
          [id, n, c, t, base.versions.get(id)],
        );
        if (updated.rowCount !== 1) throw casFailure(this.path, id);
      }
      const { n, c, t } = next.check;
      await client.query('UPDATE keyway_records SET nonce = $2, ciphertext = $3, tag = $4, updated_at = now() WHERE id = $1', [CHECK_ID, n, c, t]);
      await client.query(
        `INSERT INTO keyway_master_key (slot, kms, key_id, ciphertext) VALUES ('current', $1, $2, $3)
         ON CONFLICT (slot) DO UPDATE SET kms = $1, key_id = $2, ciphertext = $3, updated_at = now()`,
        [wrapped.kms, wrapped.key_id, wrapped.ciphertext],
      );
      return { result: next.records.size, state: next, generation: await this.#bumpGeneration(client, base.generation), key };
    });
  }

  async #writeChanges(client: pg.PoolClient, base: OpenedStore, next: OpenedStore, versions: Map<string, string>): Promise<void> {
    for (const [id, record] of next.records) {
      const before = base.records.get(id);
      if (before?.sealed === record.sealed) continue;
      const { n, c, t } = record.sealed;
      if (before === undefined) {
        await client.query('INSERT INTO keyway_records (id, nonce, ciphertext, tag, version) VALUES ($1, $2, $3, $4, 1)', [id, n, c, t]);
        continue;
      }
      const updated = await client.query(
        'UPDATE keyway_records SET nonce = $2, ciphertext = $3, tag = $4, version = version + 1, updated_at = now() WHERE id = $1 AND version = $5',
        [id, n, c, t, versions.get(id)],
      );
      if (updated.rowCount !== 1) throw casFailure(this.path, id);
    }
    for (const id of base.records.keys()) {
      if (next.records.has(id)) continue;
      const removed = await client.query('DELETE FROM keyway_records WHERE id = $1 AND version = $2', [id, versions.get(id)]);
      if (removed.rowCount !== 1) throw casFailure(this.path, id);
    }
  }

  /** The first replica on an empty database seals the check record with its key; the others verify it. */
  async #ensureCheck(client: pg.PoolClient): Promise<void> {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [STORE_WRITE_LOCK]);
      const { rowCount } = await client.query('SELECT 1 FROM keyway_records WHERE id = $1', [CHECK_ID]);
      if (rowCount === 0) {
        const { n, c, t } = emptyStore(this.#key).check;
        await client.query('INSERT INTO keyway_records (id, nonce, ciphertext, tag) VALUES ($1, $2, $3, $4)', [CHECK_ID, n, c, t]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  #adopt(state: OpenedStore, generation: string): void {
    this.#dbGeneration = generation;
    this.lastReadError = undefined;
    if (state === this.view.state) return;
    const changed = state.records.size !== this.view.state.records.size || [...state.records].some(([id, r]) => this.view.state.records.get(id) !== r);
    this.view = new RecordsView(state);
    if (!changed) return;
    this.changes++;
    try {
      this.#watch?.onChange();
    } catch (err) {
      this.#report(err);
    }
  }

  #report(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const first = this.lastReadError?.message !== error.message;
    this.lastReadError = error;
    if (first) this.#watch?.onError?.(error);
  }
}

/**
 * A grant's half of its advisory lock key: 32 bits of SHA-256 of its id, computed here so the key
 * does not depend on a server's internal hash function. Two grants sharing a key only share a lock.
 */
function grantLockKey(grantId: string): number {
  return createHash('sha256').update(grantId).digest().readInt32BE(0);
}

/** A version that moved under the advisory lock means a writer that does not take it: refuse, write nothing. */
function casFailure(where: string, id: string): KeywayError {
  return new KeywayError('store_corrupt', `the store ${where} changed record ${JSON.stringify(id)} outside keyway's write lock; nothing was written`);
}

/** Errors from the database or the connection to it (not a callback's own error). */
function isDatabaseFailure(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  return typeof e?.code === 'string' && (e.severity !== undefined || /^E[A-Z]+$/.test(e.code));
}
