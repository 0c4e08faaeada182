import { hkdfSync } from 'node:crypto';
import type { Config } from './config/index.ts';
import type { LoadConfigOptions } from './config/load.ts';
import { loadMasterKey, Store } from './credentials/store/index.ts';
import { keywayPaths, type KeywayPaths } from './paths.ts';

/**
 * What both the proxy and the command line open: the config, the paths, the master key and the
 * store. Opening the store checks the key, so a wrong key fails here, before anything else runs.
 */
export interface Services {
  config: Config;
  paths: KeywayPaths;
  store: Store;
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
}

export async function openServices(options: OpenServicesOptions): Promise<Services> {
  const env = options.env ?? process.env;
  const load = options.loadConfig ?? (await import('./config/load.ts')).loadConfig;
  const config = await load({ home: options.home, file: options.configFile });
  const paths = keywayPaths(config);
  const { key } = await loadMasterKey({ dataDir: paths.dataDir, env });
  const store = await Store.open(paths.store, key);
  return { config, paths, store, masterKey: key, auditHeadKey: deriveAuditHeadKey(key) };
}

export function deriveAuditHeadKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'keyway audit chain head v1', 32));
}
