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
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeywayError('config_invalid', `cannot read config ${path}: ${(err as NodeJS.ErrnoException).code}`);
  }
  // A file that says nothing is a file that lost what it said (truncated by a full disk, an editor
  // killed mid-save, a bad copy), not a wish for the defaults: read as them, keyway would start on
  // default ports with every config grant, agent rule, budget and proxy.hosts gone, without a word.
  // A person who wants the defaults deletes the file (or writes `{}`).
  if (saysNothing(text)) {
    throw new KeywayError(
      'config_invalid',
      `config ${path} is empty (${text.length === 0 ? '0 bytes' : 'only blank lines and comments'}): keyway does not read an empty file as the defaults; restore it from a backup, or delete it (or write {}) to run on the defaults`,
    );
  }
  return { path, text };
}

/** Only whitespace and YAML comments: no document at all. */
function saysNothing(text: string): boolean {
  return text.split(/\r?\n/).every((line) => /^\s*(?:#.*)?$/.test(line));
}

/** What a config file's text is told apart by: the running keyway says which text its config came from. */
export function configTextHash(text: string | null): string | null {
  return text === null ? null : createHash('sha256').update(text).digest('hex');
}
