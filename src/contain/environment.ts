import { type Config, secretVariables } from '../config/index.ts';

// What a contained command's environment holds (keyway run --contain). Built from an allow-list,
// never by removing what is known to be dangerous from the caller's: the shell it starts from holds
// the user's tokens (the grants' env: secrets, other agents' keys, KEYWAY_ADMIN_TOKEN, cloud
// credentials), and an agent that can read its environment would hold them all.

/** Passed through by default: what a terminal program needs to run as the user expects, no credential. */
export const PASSED_BY_DEFAULT = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TERM',
  'COLORTERM',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'EDITOR',
  'VISUAL',
  'PAGER',
  'NO_COLOR',
  'FORCE_COLOR',
  'COLUMNS',
  'LINES',
  'XDG_CONFIG_HOME',
  'XDG_CACHE_HOME',
  'XDG_DATA_HOME',
  'XDG_STATE_HOME',
] as const;

const DEFAULT = new Set<string>(PASSED_BY_DEFAULT);

/** A variable `--env` may not pass: a secret of keyway's (the config's env: references, KEYWAY_*). */
export class SecretVariableRefused extends Error {}

/**
 * The caller's variables the command gets: PASSED_BY_DEFAULT and `LC_*`, and each one `--env`
 * names (`passed`), none of keyway's secrets. Throws SecretVariableRefused when `passed` names one.
 */
export function containedEnvironment(caller: NodeJS.ProcessEnv, passed: readonly string[], config: Config): Record<string, string> {
  const secret = secretVariables(config);
  const refused = passed.filter((name) => secret.has(name));
  if (refused.length > 0) {
    throw new SecretVariableRefused(
      `--env ${refused.join(', ')}: a secret of keyway's (a config env: reference or KEYWAY_*) is never passed to a contained command; keyway reads it itself`,
    );
  }
  const wanted = new Set(passed);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(caller)) {
    if (value === undefined || secret.has(name)) continue;
    if (DEFAULT.has(name) || name.startsWith('LC_') || wanted.has(name)) env[name] = value;
  }
  return env;
}
