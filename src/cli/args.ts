import type { ParseArgsConfig } from 'node:util';
import { util } from '../builtins.ts';
import { didYouMean, unknownSubcommand } from './did-you-mean.ts';
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

/**
 * The words (arguments that are not options) a command takes: a count (`keyway refresh ID`: 1), or
 * per subcommand the count after it (`{ show: 1, list: 0 }`). Default deny: a command that says
 * nothing takes no word, and a word past what is listed is refused, never ignored.
 */
export type Words = number | Readonly<Record<string, number>>;

/** util.parseArgs with keyway's common flags; errors become keyway's own one-line usage errors. */
export function parse(argv: string[], options: OptionSpec = {}, words: Words = 0): Args {
  const spec = { ...COMMON_OPTIONS, ...options };
  let parsed: Args;
  try {
    const { values, positionals } = util.parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
    parsed = new Args(values as Record<string, string | boolean | string[] | undefined>, positionals);
  } catch (err) {
    throw usageError(argumentProblem(err, spec));
  }
  const problem = wordProblem(parsed.positionals, words, spec);
  if (problem !== undefined) throw usageError(problem);
  return parsed;
}

/** What is wrong with the words given, or undefined. A missing word is the command's to say (it knows its name). */
function wordProblem(given: readonly string[], words: Words, spec: OptionSpec): string | undefined {
  let allowed = typeof words === 'number' ? words : 0;
  if (typeof words !== 'number' && given.length > 0) {
    const subcommand = given[0]!;
    if (!Object.hasOwn(words, subcommand)) return unknownSubcommand(subcommand, Object.keys(words));
    allowed = 1 + words[subcommand]!;
  }
  const stray = given[allowed];
  if (stray === undefined) return undefined;
  // An option written without its dashes (`status json`) is the likeliest stray word.
  const guess = didYouMean(stray.replace(/^-+/, ''), Object.keys(spec), (name) => `--${name}`).replace(/^: /, '; ');
  const after = given.slice(0, allowed).join(' ');
  return `unexpected word "${stray}"${after ? ` after "${after}"` : ''}${guess} (see --help)`;
}

/**
 * What was wrong with the options, in keyway's words: Node's parseArgs text talks about its own API
 * ("To specify a positional argument starting with a '-'…"), which is no help to a person.
 * The option is read back from its message, the only place parseArgs names it.
 */
function argumentProblem(err: unknown, spec: OptionSpec): string {
  const code = (err as NodeJS.ErrnoException).code;
  const message = err instanceof Error ? err.message : '';
  const [, short, long] = /'(?:(-\w), )?(--[^' =<]+)/.exec(message) ?? [];
  const named = long ?? /'(-[^' =<]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && named !== undefined) {
    const known = Object.keys(spec).map((name) => `--${name}`);
    const guess = named.startsWith('--') ? didYouMean(named, known) : '';
    return `unknown option "${named}"${guess} (see --help)`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && named !== undefined) {
    const name = named.replace(/^-+/, '');
    const option = spec[name] ?? Object.values(spec).find((o) => o.short === name);
    const shown = short === undefined ? named : `${short} (${named})`;
    return option?.type === 'boolean' ? `${shown} takes no value` : `${shown} needs a value`;
  }
  return 'the options could not be read (see --help)';
}
