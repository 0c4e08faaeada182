import { homedir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { packagedFile } from './process/own-program.ts';
import { resolve } from 'node:path';
import type { Config } from './config/index.ts';
import { resolveFromHome } from './config/index.ts';

/** Every file keyway keeps, relative to its home folder (--home, else KEYWAY_HOME, else ~/.keyway). */
export interface KeywayPaths {
  home: string;
  certsDir: string;
  dataDir: string;
  store: string;
  /** Per-grant refresh locks shared by every process on this home. */
  locksDir: string;
  adminToken: string;
  audit: string;
  auditHead: string;
  /** Where a running proxy says it listens (see running-proxy.ts). */
  runningProxy: string;
}

/** The documented example config, shipped with the package (and in the single executable, as the asset EXAMPLE_CONFIG_ASSET). */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../config/keyway.example.yaml', import.meta.url));
export const EXAMPLE_CONFIG_ASSET = 'config/keyway.example.yaml';

/** The example config's text, wherever keyway runs from. */
export function exampleConfigText(): Buffer {
  return packagedFile(EXAMPLE_CONFIG_ASSET, pathToFileURL(EXAMPLE_CONFIG));
}

/** The folder keyway uses when neither --home nor KEYWAY_HOME names one. */
export const DEFAULT_HOME_NAME = '.keyway';

/**
 * keyway's home: `--home DIR`, else `KEYWAY_HOME`, else `~/.keyway`. Never the working folder: a
 * command run from another folder must find the same CA and store, not quietly make a second set.
 * `~` is HOME from the environment given (so a child with its own HOME gets its own), else the
 * account's home directory. An empty KEYWAY_HOME counts as unset, like an unset variable in a
 * compose file, rather than meaning the working folder.
 */
export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return resolve(flag);
  const fromEnv = env['KEYWAY_HOME'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return resolve(fromEnv);
  const userHome = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir();
  return resolve(userHome, DEFAULT_HOME_NAME);
}

/** The files `status` and `stop` read, which do not depend on the config (so a broken config does not hide a running proxy). */
export function runningProxyFiles(home: string): Pick<KeywayPaths, 'runningProxy' | 'adminToken'> {
  return { runningProxy: resolve(home, 'data', 'proxy.json'), adminToken: resolve(home, 'data', 'admin.token') };
}

export function keywayPaths(config: Config): KeywayPaths {
  const home = config.home;
  return {
    home,
    certsDir: resolve(home, 'certs'),
    dataDir: resolve(home, 'data'),
    store: resolve(home, 'data', 'store.json'),
    locksDir: resolve(home, 'data', 'locks'),
    adminToken: runningProxyFiles(home).adminToken,
    audit: resolveFromHome(config, config.audit.path),
    auditHead: resolve(home, 'data', 'audit-head.json'),
    runningProxy: runningProxyFiles(home).runningProxy,
  };
}
