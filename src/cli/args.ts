import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from './io.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Flags every command takes. */
export const COMMON_OPTIONS: OptionSpec = {
  home: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export class Args {
  readonly positionals: string[];
  readonly #values: Record<string, string | boolean | string[] | undefined>;

  constructor(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]) {
    this.#values = values;
    this.positionals = positionals;
  }

  string(name: string): string | undefined {
    const v = this.#values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** A flag given several times (`--scope a --scope b`), or a comma list. */
  strings(name: string): string[] {
    const v = this.#values[name];
    const all = Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
    return all
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** Every value of a flag given several times, each as given (no comma splitting: -H values). */
  each(name: string): string[] {
    const v = this.#values[name];
    return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
  }

  flag(name: string): boolean {
    return this.#values[name] === true;
  }

  list(name: string): string[] | undefined {
    const v = this.string(name);
    return v === undefined
      ? undefined
      : v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  }

  get json(): boolean {
    return this.flag('json');
  }

  get help(): boolean {
    return this.flag('help');
  }
}

/** util.parseArgs with keyway's common flags; errors become one-line usage errors. */
export function parse(argv: string[], options: OptionSpec = {}): Args {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return new Args(values as Record<string, string | boolean | string[] | undefined>, positionals);
  } catch (err) {
    throw usageError((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
}
