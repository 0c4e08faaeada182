import type { Config } from '../config/index.ts';
import { missingSecretVariables } from '../config/secret-variables.ts';
import { openDoor } from '../contain/door-client.ts';
import { runningProxyFiles } from '../paths.ts';
import { findRunningProxy } from '../running-proxy.ts';

// A command that only reports (doctor) needs the config's env: secrets to check what they point at
// (egress.proxy's URL), and the shell it runs in may not hold them: the running keyway does (issue
// 48: doctor failed its egress check though the running keyway had CORP_PROXY). Asked through the
// running keyway's contain door (app/contain-door.ts), for the names missing here only. The
// result is for the command's own checks: never handed to a program it starts.

export async function withRunningSecrets(config: Config, env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const missing = missingSecretVariables(config, env);
  if (missing.length === 0) return env;
  const door = findRunningProxy(runningProxyFiles(config.home).runningProxy)?.door;
  const open = door === undefined ? undefined : await openDoor(door).catch(() => undefined);
  if (open === undefined) return env;
  try {
    return { ...env, ...(await open.secrets(missing)) };
  } catch {
    return env;
  }
}
