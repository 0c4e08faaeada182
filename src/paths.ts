import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import type { Config } from './config/index.ts';
import { resolveFromHome } from './config/index.ts';

/** Every file keyway keeps, relative to its home folder (KEYWAY_HOME, --home, or the working folder). */
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

/** The documented example config, shipped with the package. */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../config/keyway.example.yaml', import.meta.url));

export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env['KEYWAY_HOME'] ?? process.cwd());
}

export function keywayPaths(config: Config): KeywayPaths {
  const home = config.home;
  return {
    home,
    certsDir: resolve(home, 'certs'),
    dataDir: resolve(home, 'data'),
    store: resolve(home, 'data', 'store.json'),
    locksDir: resolve(home, 'data', 'locks'),
    adminToken: resolve(home, 'data', 'admin.token'),
    audit: resolveFromHome(config, config.audit.path),
    auditHead: resolve(home, 'data', 'audit-head.json'),
    runningProxy: resolve(home, 'data', 'proxy.json'),
  };
}
