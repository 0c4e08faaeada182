import { hkdfSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Config } from './config/index.ts';
import type { LoadConfigOptions } from './config/load.ts';
import { KeywayError } from './errors/index.ts';
import { readSecretRef } from './config/secret-ref.ts';
import { type CredentialStore, findMasterKey, loadMasterKey, MASTER_KEY_BYTES, PostgresStore, Store } from './credentials/store/index.ts';
import { keywayPaths, type KeywayPaths } from './paths.ts';

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
  /** HMAC key for the audit chain head, derived so the master key itself is used only for the store. */
  auditHeadKey: Buffer;
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
  if (config.store.backend === 'postgres') {
    // Replicas share the database, so they must share the key: a key generated here would only be
    // refused by a database another replica sealed (store_wrong_key says so).
    const { key } = await loadMasterKey({ dataDir: paths.dataDir, env });
    const url = readSecretRef(config.store.url as NonNullable<typeof config.store.url>, env, config.home);
    const store = await PostgresStore.open(url, key, { poolSize: config.store.pool_size, statementTimeoutMs: config.store.statement_timeout });
    return { config, paths, store, masterKey: key, auditHeadKey: deriveAuditHeadKey(key) };
  }
  if (options.createOnFirstWrite) return openLazily(config, paths, env);
  const { key } = await loadMasterKey({ dataDir: paths.dataDir, env });
  const store = await Store.open(paths.store, key);
  return { config, paths, store, masterKey: key, auditHeadKey: deriveAuditHeadKey(key) };
}

async function openLazily(config: Config, paths: KeywayPaths, env: NodeJS.ProcessEnv): Promise<Services> {
  const found = await findMasterKey({ dataDir: paths.dataDir, env });
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
  const settleKey = async () => (key = (await loadMasterKey({ dataDir: paths.dataDir, env })).key);
  const store = await Store.open(paths.store, key, { createOnFirstWrite: found ? {} : { settleKey } });
  return {
    config,
    paths,
    store,
    get masterKey() {
      return key;
    },
    get auditHeadKey() {
      return deriveAuditHeadKey(key);
    },
  };
}

export function deriveAuditHeadKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'keyway audit chain head v1', 32));
}
