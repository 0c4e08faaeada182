import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { deepFreeze } from '../deep-freeze.ts';
import { KeywayError } from '../errors/index.ts';
import { configSchema } from './schema.ts';
import { defaultConfigPath, type Config } from './paths.ts';
export type { Config } from './paths.ts';


export interface LoadConfigOptions {
  home: string;
  /** An explicit --config; otherwise `home/config/keyway.yaml` if it exists. */
  file?: string | undefined;
}


export function loadConfig({ home, file }: LoadConfigOptions): Config {
  const path = file === undefined ? defaultConfigPath(home) : resolve(home, file);
  let raw: unknown = {};
  let source: string | null = null;
  if (file !== undefined || existsSync(path)) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new KeywayError('config_invalid', `cannot read config ${path}: ${(err as NodeJS.ErrnoException).code}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      const where = err instanceof YAMLParseError ? ` at line ${err.linePos?.[0]?.line ?? '?'}` : '';
      throw new KeywayError('config_invalid', `${path}${where}: not valid YAML`);
    }
    source = path;
  }
  return parseConfig(raw, home, source);
}

export function parseConfig(raw: unknown, home: string, file: string | null = null): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const first = result.error.issues[0];
    const path = first?.path.join('.') || '(top level)';
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
    throw new KeywayError('config_invalid', `${file ?? 'config'}: ${path}: ${first?.message ?? 'invalid'}${more}`);
  }
  return deepFreeze({ ...result.data, home, file });
}
