import { isAbsolute, resolve } from 'node:path';
import type { ParsedConfig } from './schema/config.ts';

/** The validated config plus where it came from; frozen so nothing changes it behind our back. */
export interface Config extends ParsedConfig {
  /** The folder every relative path is taken from (--home, else KEYWAY_HOME, else ~/.keyway). */
  home: string;
  /** The config file read, or null when built-in defaults apply. */
  file: string | null;
}

export function defaultConfigPath(home: string): string {
  return resolve(home, 'config', 'keyway.yaml');
}

export function resolveFromHome(config: Pick<Config, 'home'>, path: string): string {
  return isAbsolute(path) ? path : resolve(config.home, path);
}
