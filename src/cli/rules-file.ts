import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { usageError } from './io.ts';

/** A child's rules file (`--rules FILE`): YAML (or JSON), a list of rules in the config's form or `{rules: [...]}`. */
export function readRulesFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw usageError(`--rules: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw usageError(`--rules: ${path} is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}
