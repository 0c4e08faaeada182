import { dirname, join, resolve } from 'node:path';
import { type Config, resolveFromHome } from '../config/index.ts';

// keyway's own files, which a contained command never sees: the home (master key, store, admin
// token, CA key, audit log, config), and whatever the config keeps elsewhere: the config file
// given with --config, the audit log's folder, every file a secret reference names (file:PATH).

export function keywayFiles(config: Config, configFile: string | undefined): string[] {
  const paths = new Set<string>([config.home, resolveFromHome(config, dirname(config.audit.path))]);
  if (configFile !== undefined) paths.add(resolve(configFile));
  if (config.file !== null) paths.add(resolve(config.file));
  walk(config, (path) => paths.add(resolveFromHome(config, path)));
  return [...paths];
}

/** Every file reference in the config: a parsed {kind: 'file', path} or a `file:PATH` string where one may stand. */
function walk(value: unknown, found: (path: string) => void, depth = 0): void {
  if (depth > 12 || value === null || typeof value !== 'object') {
    if (typeof value === 'string' && value.startsWith('file:') && value.length > 5) found(value.slice(5));
    return;
  }
  const record = value as Record<string, unknown>;
  if (record['kind'] === 'file' && typeof record['path'] === 'string') found(record['path']);
  for (const child of Array.isArray(value) ? value : Object.values(record)) walk(child, found, depth + 1);
}

/** contain.hide's paths: `~/` under each home folder. */
export function configuredHidden(config: Config, homes: readonly string[]): string[] {
  return config.contain.hide.flatMap((path) => (path.startsWith('~/') ? homes.map((home) => join(home, path.slice(2))) : [path]));
}
