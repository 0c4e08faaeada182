// The options every command takes (--home, --config, --json, --help) may come before the command as
// well as after it: `keyway --home /var/lib/keyway grants list` is what `service install` prints.
// Those before the command are moved after its name, where each command's own parser reads them,
// so a command sees one form whichever a person typed.

/** Every command's options that take a value: the word after them is theirs, not the command. */
const VALUE_OPTIONS = new Set(['--home', '--config']);
/** Every command's options that take none. */
const FLAG_OPTIONS = new Set(['--json']);
/** What may come before the command (besides --help and --version). */
export const GLOBAL_OPTIONS: readonly string[] = [...VALUE_OPTIONS, ...FLAG_OPTIONS];

export interface CommandLine {
  /** The command's name, or undefined when none was given. */
  name: string | undefined;
  /** Its arguments, with the global options given before it put first. */
  rest: string[];
  /** --help, -h, --version or -V given before any command (what the top level answers). */
  topLevel: '--help' | '--version' | undefined;
}

/**
 * Splits `keyway [GLOBAL…] COMMAND ARGS…`. A word before the command that is not a global option
 * is taken as the command's name (so an unknown option there is reported as an unknown command,
 * with a guess). --home and --config without a value are left for the command's parser to refuse.
 */
export function splitCommandLine(argv: readonly string[]): CommandLine {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const word = argv[i]!;
    const [option] = word.split('=', 1) as [string];
    if (word === '--help' || word === '-h' || word === 'help') return { name: undefined, rest: [], topLevel: '--help' };
    if (word === '--version' || word === '-V') return { name: undefined, rest: [], topLevel: '--version' };
    if (VALUE_OPTIONS.has(option)) {
      const takesNext = option === word && i + 1 < argv.length;
      globals.push(...argv.slice(i, takesNext ? i + 2 : i + 1));
      i += takesNext ? 2 : 1;
    } else if (FLAG_OPTIONS.has(option)) {
      globals.push(word);
      i += 1;
    } else break;
  }
  const name = argv[i];
  // Global options with no command after them: the command's name is missing, said as such.
  return { name, rest: name === undefined ? globals : [...globals, ...argv.slice(i + 1)], topLevel: undefined };
}
