import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { secretVariableNames } from '../../../config/secret-variables.ts';
import { MASTER_KEY_FILENAME } from '../../../credentials/store/master-key.ts';
import { runningProxyFiles } from '../../../paths.ts';
import { listRunningProxies } from '../../../running-proxy.ts';
import type { CheckResult, Context } from './context.ts';

// Whether an agent started as this user could read every secret: the master key decrypts the
// store, and a program this user runs can read what this user can. Reach is judged by ownership,
// not only by mode bits: a file the user owns is readable by the user (chmod gives the bits back),
// and so is the environment of a keyway running as the user (/proc/PID/environ), where the
// config's env: secrets are. The fix is to keep the agent out of keyway's reach (keyway run
// --contain) or keyway out of the user's (keyway service install).

export const REACH_CHECK = "keyway's secrets out of an agent's reach";
const FIX = "run the agent with `keyway run --contain` (it sees nothing of keyway's), or run keyway as its own user: `sudo keyway service install`";

export function checkSecretsReach(ctx: Context, uid = process.getuid?.() ?? -1): CheckResult {
  const env = ctx.io.env;
  if (env['KEYWAY_MASTER_KEY'] !== undefined) {
    return {
      check: REACH_CHECK,
      status: 'warn',
      detail: 'KEYWAY_MASTER_KEY is in your environment: an agent you start from this shell gets it, and with it every secret',
      fix: FIX,
    };
  }
  const file = env['KEYWAY_MASTER_KEY_FILE'] ?? join(ctx.config.home, 'data', MASTER_KEY_FILENAME);
  const reach = reachOf(file, uid);
  if (reach !== undefined) {
    return { check: REACH_CHECK, status: 'warn', detail: `an agent running as you (uid ${uid}) can read every secret: ${file} is ${reach}`, fix: FIX };
  }
  const exposed = runningWithSecrets(ctx, uid);
  if (exposed !== undefined) {
    return {
      check: REACH_CHECK,
      status: 'warn',
      detail: `keyway (pid ${exposed.pid}) runs as you (uid ${uid}) with ${exposed.names.join(', ')} in its environment: an agent running as you reads them in /proc/${exposed.pid}/environ`,
      fix: FIX,
    };
  }
  return { check: REACH_CHECK, status: 'ok', detail: `the master key is not readable as uid ${uid}` };
}

/** Why `uid` can read `path` (readable, or its own whatever its mode), or undefined. */
export function reachOf(path: string, uid: number, access: (path: string) => boolean = readable): string | undefined {
  let owner: number;
  try {
    owner = statSync(path).uid;
  } catch {
    return undefined;
  }
  if (owner === uid) return 'yours: its mode bits do not keep you out (chmod gives them back)';
  return access(path) ? 'readable to you' : undefined;
}

/** A keyway of this home running as `uid` with the config's env: secrets in its environment. */
function runningWithSecrets(ctx: Context, uid: number): { pid: number; names: string[] } | undefined {
  let secretNames: string[];
  try {
    secretNames = [...secretVariableNames(ctx.config), 'KEYWAY_MASTER_KEY'];
  } catch {
    return undefined;
  }
  for (const running of listRunningProxies(runningProxyFiles(ctx.config.home).runningProxy).running) {
    try {
      if (statSync(`/proc/${running.pid}`).uid !== uid) continue;
      const names = new Set(
        readFileSync(`/proc/${running.pid}/environ`, 'latin1')
          .split('\0')
          .map((entry) => entry.slice(0, entry.indexOf('='))),
      );
      const present = secretNames.filter((name) => names.has(name));
      if (present.length > 0) return { pid: running.pid, names: present };
    } catch {
      // Gone, or not ours to read: nothing an agent of this uid could read either.
    }
  }
  return undefined;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
