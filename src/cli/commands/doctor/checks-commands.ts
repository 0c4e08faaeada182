// doctor's check of each grant whose secret a command prints (secret: {cmd: …}, config only): the
// command is run the way the proxy runs it (credentials/providers/cmd-secrets.ts: no shell,
// keyway's environment without keyway's own secrets, the grant's timeout, output bounded), and what
// it printed is read as the grant's kind of secret. The line says whether that gave a value and how
// long the run took, or why not, in keyway's own words (the first line of its stderr, with anything
// it printed scrubbed): never the value. The command runs in this shell's environment, which may
// differ from the running keyway's (a password manager's session variable, say).
import { performance } from 'node:perf_hooks';
import type { SecretCommand } from '../../../config/secret-command.ts';
import { commandMaterial } from '../../../credentials/providers/cmd-material.ts';
import { CommandSecrets } from '../../../credentials/providers/cmd-secrets.ts';
import type { Grant } from '../../../credentials/grant.ts';
import type { CheckResult, Context } from './context.ts';

export async function checkSecretCommands(ctx: Context): Promise<CheckResult[]> {
  const commands = Object.entries(ctx.config.grants).flatMap(([id, g]) => (g.secret?.kind === 'cmd' ? [{ id, type: g.type, command: g.secret }] : []));
  if (commands.length === 0) return [];
  // One runner per check: nothing cached from an earlier run, and no value kept after doctor.
  const runner = new CommandSecrets({ config: () => ctx.config, env: ctx.io.env });
  return Promise.all(commands.map(({ id, type, command }) => checkOne(runner, id, type, command)));
}

async function checkOne(runner: CommandSecrets, id: string, type: Grant['type'], command: SecretCommand): Promise<CheckResult> {
  const check = `grant ${id}'s secret command (${command.argv[0]})`;
  const started = performance.now();
  try {
    commandMaterial({ id, type, secretCommand: command, secretFrom: undefined }, await runner.get(id, command));
    const ms = Math.round(performance.now() - started);
    return { check, status: 'ok', detail: `printed a ${type} secret in ${ms} ms (the value is not shown)` };
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    const hint = (err as { hint?: unknown }).hint;
    return {
      check,
      status: 'fail',
      detail: `${(err as Error).message} (after ${ms} ms); requests on grant ${id} get 502 secret_unavailable`,
      fix: typeof hint === 'string' ? hint : `run the command of grants.${id}.secret yourself to see why`,
    };
  }
}
