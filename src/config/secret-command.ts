// A grant's secret printed by a command (`secret: {cmd: [PROG, ARG…], cache, timeout}`), in the
// config file only: the store and the admin API hold values, and a command named there could be
// planted by whoever may write them. What the command may do is bounded here; it is run by
// credentials/providers/cmd-secret.ts.

/** How long a command's output is used before it runs again (default, least, most). */
export const CMD_CACHE_DEFAULT_MS = 10 * 60_000;
export const CMD_CACHE_MIN_MS = 1_000;
export const CMD_CACHE_MAX_MS = 24 * 3_600_000;
/** How long a command may run before it (and its process group) is killed. */
export const CMD_TIMEOUT_DEFAULT_MS = 10_000;
export const CMD_TIMEOUT_MIN_MS = 100;
export const CMD_TIMEOUT_MAX_MS = 120_000;
/** Words in a command line; more is a mistake, not a command. */
export const CMD_MAX_ARGS = 64;

export interface SecretCommand {
  readonly kind: 'cmd';
  /** The program (looked up on PATH) and its arguments, run without a shell. */
  readonly argv: readonly string[];
  readonly cacheMs: number;
  readonly timeoutMs: number;
}

/** A key for a command: changes when any word or bound changes (a reload that changes it drops its cached value). */
export function commandKey(command: SecretCommand): string {
  return JSON.stringify([command.argv, command.cacheMs, command.timeoutMs]);
}

/** Whether a value given for a grant's secret (a JSON body, a --value) is a command reference: refused outside the config file. */
export function looksLikeCommandRef(input: unknown): boolean {
  if (typeof input === 'string') {
    const text = input.trim();
    if (!text.startsWith('{')) return false;
    try {
      return looksLikeCommandRef(JSON.parse(text));
    } catch {
      return false;
    }
  }
  return typeof input === 'object' && input !== null && !Array.isArray(input) && Object.hasOwn(input, 'cmd');
}
