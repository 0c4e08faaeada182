import { parse as parseYaml, YAMLParseError } from 'yaml';
import { deepFreeze } from '../deep-freeze.ts';
import { KeywayError } from '../errors/index.ts';
import { duplicateKeyPath, describeIssues } from './messages.ts';
import { configSchema } from './schema/config.ts';
import type { Config } from './paths.ts';
import { type ConfigSource, type LoadConfigOptions, readConfigSource } from './source.ts';
export type { Config } from './paths.ts';

export type { LoadConfigOptions } from './source.ts';

export function loadConfig(options: LoadConfigOptions): Config {
  return parseConfigSource(options.home, readConfigSource(options));
}

/** Parses and validates a source read by readConfigSource. */
export function parseConfigSource(home: string, { path, text }: ConfigSource): Config {
  let raw: unknown = {};
  let source: string | null = null;
  if (path !== null && text !== null) {
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      const where = err instanceof YAMLParseError ? ` at line ${err.linePos?.[0]?.line ?? '?'}` : '';
      if (err instanceof YAMLParseError && err.code === 'DUPLICATE_KEY') {
        const key = duplicateKeyPath(text, err.pos[0]);
        throw new KeywayError('config_invalid', `${path}${where}: ${key === undefined ? 'a key' : `the key ${key}`} is given twice; keep one`);
      }
      const alias = unresolvedAlias(err, text);
      if (alias !== undefined) throw new KeywayError('config_invalid', `${path}${alias}`);
      // The parser's reason, without the excerpt of the file that follows it (a config may hold a secret by mistake).
      const reason = err instanceof YAMLParseError ? (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').trim() : '';
      throw new KeywayError('config_invalid', `${path}${where}: not valid YAML${reason ? ` (${reason})` : ''}`);
    }
    source = path;
  }
  return parseConfig(raw, home, source);
}

/**
 * YAML reads an unquoted value that begins with `*` (`domains: [*.example.com]`) as an alias of an
 * anchor; the parser then fails with a ReferenceError that names no line. Said with the line and
 * the fix (quote it), or undefined for any other error.
 */
function unresolvedAlias(err: unknown, text: string): string | undefined {
  if (!(err instanceof ReferenceError) || !err.message.startsWith('Unresolved alias')) return undefined;
  const name = err.message.slice(err.message.lastIndexOf(':') + 1).trim();
  const at = text.split('\n').findIndex((line) => line.includes(`*${name}`));
  const where = at === -1 ? '' : ` at line ${at + 1}`;
  return `${where}: not valid YAML (*${name} reads as an alias: quote values that begin with *, as '*${name}')`;
}

export function parseConfig(raw: unknown, home: string, file: string | null = null): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new KeywayError('config_invalid', `${file ?? 'config'}: ${problemsText(describeIssues(result.error.issues, raw, configSchema))}`);
  return deepFreeze({ ...result.data, home, file });
}

/** Enough to fix a config in one go, not a wall: past this many, a count of the rest. */
const MAX_PROBLEMS_SHOWN = 20;

/**
 * One problem on the line; several, each on a line of its own under a count, so a second mistake
 * is seen now and not at the next try.
 */
function problemsText(problems: readonly string[]): string {
  if (problems.length <= 1) return problems[0] ?? 'invalid';
  const rest = problems.length - MAX_PROBLEMS_SHOWN;
  const shown = problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `\n  ${p}`);
  return `${problems.length} problems:${shown.join('')}${rest > 0 ? `\n  (and ${rest} more)` : ''}`;
}
