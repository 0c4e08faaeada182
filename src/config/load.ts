import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { deepFreeze } from '../deep-freeze.ts';
import { KeywayError } from '../errors/index.ts';
import { duplicateKeyPath, describeIssue } from './messages.ts';
import { configSchema, type ParsedConfig } from './schema.ts';
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
      if (err instanceof YAMLParseError && err.code === 'DUPLICATE_KEY') {
        const key = duplicateKeyPath(text, err.pos[0]);
        throw new KeywayError('config_invalid', `${path}${where}: ${key === undefined ? 'a key' : `the key ${key}`} is given twice; keep one`);
      }
      throw new KeywayError('config_invalid', `${path}${where}: not valid YAML`);
    }
    source = path;
  }
  return parseConfig(raw, home, source);
}

export function parseConfig(raw: unknown, home: string, file: string | null = null): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    // A misspelt key explains the "required" issue its correct spelling raises: report it first.
    const [first] = [...result.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
    throw new KeywayError('config_invalid', `${file ?? 'config'}: ${first ? describeIssue(first, raw, configSchema) : 'invalid'}${more}`);
  }
  const parsed = result.data;
  checkCrossReferences(parsed, file);
  return deepFreeze({ ...parsed, home, file });
}

function checkCrossReferences(config: ParsedConfig, file: string | null): void {
  const fail = (path: string, message: string) => {
    throw new KeywayError('config_invalid', `${file ?? 'config'}: ${path}: ${message}`);
  };
  for (const [id, grant] of Object.entries(config.grants)) {
    if (grant.type === 'api_key' && !grant.inject?.header && !grant.inject?.query) {
      fail(`grants.${id}.inject`, 'an api_key grant needs inject.header (with format) or inject.query');
    }
    if (grant.inject?.header && grant.inject.query) fail(`grants.${id}.inject`, 'use header or query, not both');
    if (grant.secret === undefined && (grant.type === 'api_key' || grant.type === 'bearer' || grant.type === 'basic')) {
      fail(`grants.${id}.secret`, 'expected env:NAME or file:PATH (or add the grant with `keyway grants add`)');
    }
  }
  for (const [id, agent] of Object.entries(config.agents)) {
    if (agent.lease_ttl !== undefined && agent.max_lease_ttl !== undefined && agent.lease_ttl > agent.max_lease_ttl) {
      fail(`agents.${id}.lease_ttl`, 'is longer than max_lease_ttl');
    }
  }
}
