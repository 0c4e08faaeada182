import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { MASTER_KEY_FILENAME } from '../../../credentials/store/master-key.ts';
import type { CheckResult, Context } from './context.ts';

// Whether an agent started as this user could read every secret: the master key decrypts the
// store, and a program this user runs can read what this user can. The fix is to keep the agent
// out of keyway's reach (keyway run --contain) or keyway out of the user's (keyway service install).

export const REACH_CHECK = "keyway's secrets out of an agent's reach";
const FIX = "run the agent with `keyway run --contain` (it sees nothing of keyway's), or run keyway as its own user: `sudo keyway service install`";

export function checkSecretsReach(ctx: Context): CheckResult {
  const uid = process.getuid?.() ?? -1;
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
  if (readable(file)) {
    return {
      check: REACH_CHECK,
      status: 'warn',
      detail: `an agent running as you (uid ${uid}) can read every secret: ${file} is readable to you`,
      fix: FIX,
    };
  }
  return { check: REACH_CHECK, status: 'ok', detail: `the master key is not readable as uid ${uid}` };
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
