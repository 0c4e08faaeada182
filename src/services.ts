import { hkdfSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Config } from './config/index.ts';
import type { LoadConfigOptions } from './config/load.ts';
import { KeywayError } from './errors/index.ts';
import { readSecretRef } from './config/secret-ref.ts';
import { type CredentialStore, findMasterKey, loadMasterKey, MASTER_KEY_BYTES, PostgresStore, Store } from './credentials/store/index.ts';
import { keywayPaths, type KeywayPaths } from './paths.ts';
import { type CheckpointKey, checkpointKeyFromSeed, checkpointSeedFrom } from './audit/checkpoints/index.ts';
import { AUDIT_KEYS_RECORD, pendingKey, promotePending } from './credentials/store/key-rotation.ts';
import { databaseMasterKey, existingDatabaseKey, keyInDatabase } from './credentials/store/postgres-key.ts';

/**
 * What both the proxy and the command line open: the config, the paths, the master key and the
 * store. Opening the store checks the key, so a wrong key fails here, before anything else runs.
 */
export interface Services {
  config: Config;
  paths: KeywayPaths;
  /** The file store (data/store.json) or, with store.backend postgres, the database. */
  store: CredentialStore;
  masterKey: Buffer;
  /** HMAC key for the audit chain head, derived so the master key itself is used only for the store (pinned in it once rotated). */
  auditHeadKey: Buffer;
  /** The Ed25519 key that signs audit checkpoints: derived from the master key, or as a rotation pinned it. */
  checkpointKey: CheckpointKey;
}

export interface OpenServicesOptions {
  home: string;
  configFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** How to read the config: in this process by default; the proxy uses loadConfigIsolated. */
  loadConfig?: (options: LoadConfigOptions) => Config | Promise<Config>;
  /**
   * The command line's way: make no master key and no store until the first write, so a command
   * that only reads (`grants list` on a new home) leaves the home as it found it. The proxy makes
   * both at start.
   */
  createOnFirstWrite?: boolean;
}

export async function openServices(options: OpenServicesOptions): Promise<Services> {
  const env = options.env ?? process.env;
  const load = options.loadConfig ?? (await import('./config/load.ts')).loadConfig;
  const config = await load({ home: options.home, file: options.configFile });
  const paths = keywayPaths(config);
  const wrap = config.store.key;
  if (config.store.backend === 'postgres') {
    // Replicas share the database, so they must share the key: a key generated here would only be
    // refused by a database another replica sealed (store_wrong_key says so).
    const url = readSecretRef(config.store.url as NonNullable<typeof config.store.url>, env, config.home);
    const options = { poolSize: config.store.pool_size, statementTimeoutMs: config.store.statement_timeout };
    // With a KMS, the wrapped key lives in the database, the same for every replica and rotated there
    // (unless KEYWAY_MASTER_KEY(_FILE) gives the key, which wins as it does everywhere).
    if (wrap !== 'file' && keyInDatabase(config, env)) {
      const key = await databaseMasterKey(url, wrap, env, paths.dataDir);
      const reloadKey = () => existingDatabaseKey(url, wrap, env);
      const store = await PostgresStore.open(url, key, { ...options, reloadKey });
      return withAuditKeys({ config, paths, store, masterKey: key });
    }
    const { key } = await loadMasterKey({ dataDir: paths.dataDir, env, wrap });
    const store = await PostgresStore.open(url, key, options);
    return withAuditKeys({ config, paths, store, masterKey: key });
  }
  if (options.createOnFirstWrite) return openLazily(config, paths, env);
  const { key } = await loadMasterKey({ dataDir: paths.dataDir, env, wrap });
  const opened = await openFileStore(paths, key, wrap, env);
  return withAuditKeys({ config, paths, store: opened.store, masterKey: opened.key });
}

/**
 * The file store, following a key rotation: a store another process sealed again under a pending key
 * opens with that key (and a start that finds one left by a rotation cut short promotes it); a
 * running store re-reads the key when its file stops opening with the one in memory.
 */
async function openFileStore(
  paths: KeywayPaths,
  key: Buffer,
  wrap: Config['store']['key'],
  env: NodeJS.ProcessEnv,
  lazy = false,
): Promise<{ store: Store; key: Buffer }> {
  const currentKey = async () => (await pendingKey(paths.dataDir, wrap, env)) ?? (await findMasterKey({ dataDir: paths.dataDir, env, wrap }))?.key;
  try {
    return { store: await Store.open(paths.store, key, { reloadKey: currentKey, ...(lazy ? { createOnFirstWrite: {} } : {}) }), key };
  } catch (err) {
    if (!(err instanceof KeywayError) || err.code !== 'store_wrong_key') throw err;
    const pending = await pendingKey(paths.dataDir, wrap, env);
    if (pending === undefined) throw err;
    const store = await Store.open(paths.store, pending, { reloadKey: currentKey });
    await promotePending(paths.dataDir);
    return { store, key: pending };
  }
}

/** The audit keys: pinned in the store by a rotation, else derived from the master key. */
function withAuditKeys(parts: Omit<Services, 'auditHeadKey' | 'checkpointKey'>): Services {
  const keys = auditKeysOf(parts.store, parts.masterKey, deriveAuditHeadKey);
  return { ...parts, auditHeadKey: keys.headKey, checkpointKey: keys.checkpointKey };
}

async function openLazily(config: Config, paths: KeywayPaths, env: NodeJS.ProcessEnv): Promise<Services> {
  const found = await findMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key });
  if (found === undefined && existsSync(paths.store)) {
    // Generating a key now would only make a second key that cannot open this store.
    throw new KeywayError(
      'master_key_invalid',
      `the store ${paths.store} exists but its master key does not: ${paths.dataDir}/master.key is missing and neither KEYWAY_MASTER_KEY nor KEYWAY_MASTER_KEY_FILE is set`,
    );
  }
  // No key yet: a stand-in seals the empty in-memory store; the first write settles the real one
  // (generating data/master.key, or reading the one another process made meanwhile).
  let key = found?.key ?? randomBytes(MASTER_KEY_BYTES);
  const settleKey = async () => (key = (await loadMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key })).key);
  let store: Store;
  if (found) {
    // The key may be a pending one a rotation left (openFileStore promotes it).
    const opened = await openFileStore(paths, key, config.store.key, env, true);
    key = opened.key;
    store = opened.store;
  } else store = await Store.open(paths.store, key, { createOnFirstWrite: { settleKey } });
  return {
    config,
    paths,
    store,
    get masterKey() {
      return key;
    },
    get auditHeadKey() {
      return auditKeysOf(store, key, deriveAuditHeadKey).headKey;
    },
    get checkpointKey() {
      return auditKeysOf(store, key, deriveAuditHeadKey).checkpointKey;
    },
  };
}

export function deriveAuditHeadKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'keyway audit chain head v1', 32));
}

interface AuditKeysRecord {
  head_key: string;
  checkpoint_seed: string;
}

export interface AuditKeys {
  headKey: Buffer;
  checkpointKey: CheckpointKey;
}

/** The audit chain's head key and the checkpoint signing key: as pinned in the store, else derived from the master key. */
export function auditKeysOf(records: { get<T>(id: string): T | undefined }, masterKey: Buffer, deriveHead: (key: Buffer) => Buffer): AuditKeys {
  const pinned = records.get<AuditKeysRecord>(AUDIT_KEYS_RECORD);
  if (pinned !== undefined) {
    return { headKey: Buffer.from(pinned.head_key, 'base64'), checkpointKey: checkpointKeyFromSeed(Buffer.from(pinned.checkpoint_seed, 'base64')) };
  }
  return { headKey: deriveHead(masterKey), checkpointKey: checkpointKeyFromSeed(checkpointSeedFrom(masterKey)) };
}

/** The record that pins the audit keys a master key gives (step 1). */
export function auditKeysRecord(masterKey: Buffer, deriveHead: (key: Buffer) => Buffer): AuditKeysRecord {
  return { head_key: deriveHead(masterKey).toString('base64'), checkpoint_seed: checkpointSeedFrom(masterKey).toString('base64') };
}
