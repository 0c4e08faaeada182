// Opening a keyway home (config, paths, master key, store, audit keys), for the proxy and every
// command alike. Not src/service/, which installs keyway as a system service.
import { hkdfSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from './config/index.ts';
import type { LoadConfigOptions } from './config/load.ts';
import { KeywayError } from './errors/index.ts';
import { readSecretRef } from './config/secret-ref.ts';
import { type CredentialStore, describeDatabase, findMasterKey, loadMasterKey, MASTER_KEY_BYTES, PostgresStore, Store } from './credentials/store/index.ts';
import { createStoreIfMissing } from './credentials/store/store.ts';
import { withStoreLock } from './credentials/store/lock.ts';
import { keywayPaths, type KeywayPaths } from './paths.ts';
import { historyEvidence, keyMissing, storeMissing } from './home-history.ts';
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
  /** Set when `--fresh-store` made a new store over a home with history: what said it had one (for the audit line). */
  freshOverHistory?: string[];
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
  /**
   * `keyway start --fresh-store`: a missing store may be made anew even though the home has history
   * (home-history.ts). Never replaces a store that exists.
   */
  freshStore?: boolean;
  /**
   * The audit commands' way (`audit verify`, `public-key`, `export`): a home whose store file is
   * missing still opens, since they read only the audit log and the keys that check it, and write
   * nothing to the store. Evidence is worth most on a home that lost its store.
   */
  auditOnly?: boolean;
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
    // A database that already holds a store needs the key it was sealed with: a new key file
    // written here would only be refused by it, and leave the home changed by a failed start.
    const found = await findMasterKey({ dataDir: paths.dataDir, env, wrap });
    if (found === undefined && (await PostgresStore.holdsStore(url))) throw keyMissing(describeDatabase(url), paths);
    const { key } = found ?? (await loadMasterKey({ dataDir: paths.dataDir, env, wrap }));
    const store = await PostgresStore.open(url, key, options);
    return withAuditKeys({ config, paths, store, masterKey: key });
  }
  const fresh = options.freshStore === true;
  const freshOverHistory = await checkHistory(paths, env, wrap, fresh || options.auditOnly === true);
  if (options.createOnFirstWrite || options.auditOnly) return openLazily(config, paths, env);
  // The key is made with the store, under the store's lock, so another first start never sees one
  // without the other (which would read as history).
  if (!existsSync(paths.store)) {
    await createStoreIfMissing(paths.store, async () => {
      await refuseFreshOverHistory(paths, fresh);
      return (await loadMasterKey({ dataDir: paths.dataDir, env, wrap })).key;
    });
  }
  const { key } = await loadMasterKey({ dataDir: paths.dataDir, env, wrap });
  const opened = await openFileStore(paths, key, wrap, env);
  return withAuditKeys({ config, paths, store: opened.store, masterKey: opened.key, ...(freshOverHistory ? { freshOverHistory } : {}) });
}

/**
 * Never fresh over history, checked before anything is made: a store file missing while the home's
 * audit log, head or key file say it existed stops here (unless `--fresh-store` says so, when the
 * evidence is returned for the start's audit line), and so does a store whose key is nowhere.
 */
async function checkHistory(paths: KeywayPaths, env: NodeJS.ProcessEnv, wrap: Config['store']['key'], fresh: boolean): Promise<string[] | undefined> {
  if (existsSync(paths.store)) {
    if ((await findMasterKey({ dataDir: paths.dataDir, env, wrap })) === undefined) throw keyMissing(paths.store, paths);
    return undefined;
  }
  const evidence = await historyEvidence(paths);
  if (evidence.length === 0) return undefined;
  if (fresh) return evidence;
  // Another first start may be between its key and its store, which it makes under the store's
  // lock: look again under that lock before calling it history.
  if (existsSync(dirname(paths.store))) await withStoreLock(paths.store, () => refuseFreshOverHistory(paths, false));
  else throw storeMissing(paths, evidence);
  return undefined;
}

/** Under the store's lock, with the store file still missing: refuse when the home has history. */
async function refuseFreshOverHistory(paths: KeywayPaths, fresh: boolean): Promise<void> {
  if (fresh || existsSync(paths.store)) return;
  const evidence = await historyEvidence(paths);
  if (evidence.length > 0) throw storeMissing(paths, evidence);
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
  // The store is looked for before the key: a first write elsewhere makes the key, then the store,
  // so a store seen first has its key by the time we look (the other order reads a race as loss).
  const storeSeen = existsSync(paths.store);
  const found = await findMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key });
  // Generating a key now would only make a second key that cannot open this store.
  if (found === undefined && storeSeen) throw keyMissing(paths.store, paths);
  // No key yet: a stand-in seals the empty in-memory store; the first write settles the real one
  // (generating data/master.key, or reading the one another process made meanwhile).
  let key = found?.key ?? randomBytes(MASTER_KEY_BYTES);
  // Under the store's lock when it makes the store: the home is looked at once more there.
  const settleKey = async () => {
    await refuseFreshOverHistory(paths, false);
    key = (await loadMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key })).key;
    return key;
  };
  let store: Store;
  if (found) {
    // The key may be a pending one a rotation left (openFileStore promotes it).
    const opened = await openFileStore(paths, key, config.store.key, env, true);
    key = opened.key;
    store = opened.store;
  } else {
    try {
      store = await Store.open(paths.store, key, { createOnFirstWrite: { settleKey } });
    } catch (err) {
      // A first write elsewhere made the key, then the store, between our look for a key and this
      // open (so the stand-in does not open it): open theirs with the key it was made with.
      if (!(err instanceof KeywayError) || err.code !== 'store_wrong_key') throw err;
      const made = await findMasterKey({ dataDir: paths.dataDir, env, wrap: config.store.key });
      if (made === undefined) throw err;
      const opened = await openFileStore(paths, made.key, config.store.key, env, true);
      key = opened.key;
      store = opened.store;
    }
  }
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
