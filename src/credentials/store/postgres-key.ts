// The master key of a PostgreSQL store wrapped by a KMS (store.key: {kms: …}), kept in the database
// (keyway_master_key) rather than in each replica's data folder, so every replica unwraps the same
// key and a rotation reaches them all. The first replica on a new database has the KMS make the key
// (or wraps in the one its data folder holds: master.key.kms, from before); the others unwrap that.
import type { KmsKeyConfig, StoreKeyConfig } from '../../config/secret-sources.ts';
import { KeywayError } from '../../errors/index.ts';
import { loadPg } from '../../net/pg.ts';
import { kmsWrapper, readWrappedKey } from './key-wrap.ts';
import { migrate } from './postgres-schema.ts';
import { describeDatabase } from './postgres-store.ts';

interface KeyRow {
  kms: string;
  key_id: string;
  ciphertext: string;
}

async function withClient<T>(url: string, fn: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const { Client } = await loadPg();
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: 'keyway-key' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await migrate(client);
    return await fn(client);
  } catch (err) {
    if (err instanceof KeywayError) throw err;
    throw new KeywayError('store_unavailable', `the store's database ${describeDatabase(url)} cannot be used: ${(err as Error).message}`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The wrapped key row, if the database has one. */
export function readDatabaseKeyRow(url: string): Promise<KeyRow | undefined> {
  return withClient(
    url,
    async (client) => (await client.query<KeyRow>(`SELECT kms, key_id, ciphertext FROM keyway_master_key WHERE slot = 'current'`)).rows[0],
  );
}

/**
 * The master key of this database, unwrapped: from its row; on a database without one, the key this
 * replica's data folder holds wrapped (a home moved onto PostgreSQL), else a new one the KMS makes.
 * Two replicas starting at once: the first row written wins, and both unwrap it.
 */
export async function databaseMasterKey(url: string, kms: KmsKeyConfig, env: NodeJS.ProcessEnv, dataDir: string): Promise<Buffer> {
  const wrapper = await kmsWrapper(kms, env);
  const row = await readDatabaseKeyRow(url);
  if (row !== undefined) return wrapper.unwrap(Buffer.from(row.ciphertext, 'base64'), row.key_id);
  const local = await readWrappedKey(dataDir);
  const proposed = local
    ? { key_id: local.key_id, ciphertext: local.ciphertext }
    : await wrapper.generate().then((m) => ({ key_id: m.keyId, ciphertext: m.ciphertext.toString('base64') }));
  const kept = await withClient(url, async (client) => {
    await client.query(`INSERT INTO keyway_master_key (slot, kms, key_id, ciphertext) VALUES ('current', $3, $1, $2) ON CONFLICT (slot) DO NOTHING`, [
      proposed.key_id,
      proposed.ciphertext,
      kms.kms,
    ]);
    return (await client.query<KeyRow>(`SELECT kms, key_id, ciphertext FROM keyway_master_key WHERE slot = 'current'`)).rows[0]!;
  });
  return wrapper.unwrap(Buffer.from(kept.ciphertext, 'base64'), kept.key_id);
}

/** The database's master key if it has one, unwrapped; undefined when none was made yet (nothing is made here). */
export async function existingDatabaseKey(url: string, kms: KmsKeyConfig, env: NodeJS.ProcessEnv): Promise<Buffer | undefined> {
  const row = await readDatabaseKeyRow(url);
  return row === undefined ? undefined : (await kmsWrapper(kms, env)).unwrap(Buffer.from(row.ciphertext, 'base64'), row.key_id);
}

/** Whether this config keeps its master key in the database: PostgreSQL, a KMS, and no key given in the environment. */
export function keyInDatabase(config: { store: { backend: string; key: StoreKeyConfig } }, env: NodeJS.ProcessEnv): boolean {
  return (
    config.store.backend === 'postgres' && config.store.key !== 'file' && env['KEYWAY_MASTER_KEY'] === undefined && env['KEYWAY_MASTER_KEY_FILE'] === undefined
  );
}
