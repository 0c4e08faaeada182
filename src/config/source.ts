import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KeywayError } from '../errors/index.ts';
import { defaultConfigPath } from './paths.ts';

// Reading the config file, apart from parsing it (load.ts): `keyway run` reads the text and its hash
// to ask a running keyway whether its config came from that very text, without yaml or the schema.

export interface LoadConfigOptions {
  home: string;
  /** An explicit --config; otherwise `home/config/keyway.yaml` if it exists. */
  file?: string | undefined;
}

/** The file a config is read from and its text; null for a home with no config file (defaults). */
export interface ConfigSource {
  path: string | null;
  text: string | null;
}

/** Reads the config file loadConfig would read (no parsing: yaml and the schema are not needed for this). */
export function readConfigSource({ home, file }: LoadConfigOptions): ConfigSource {
  const path = file === undefined ? defaultConfigPath(home) : resolve(home, file);
  if (file === undefined && !existsSync(path)) return { path: null, text: null };
  try {
    return { path, text: readFileSync(path, 'utf8') };
  } catch (err) {
    throw new KeywayError('config_invalid', `cannot read config ${path}: ${(err as NodeJS.ErrnoException).code}`);
  }
}

/** What a config file's text is told apart by: the running keyway says which text its config came from. */
export function configTextHash(text: string | null): string | null {
  return text === null ? null : createHash('sha256').update(text).digest('hex');
}
