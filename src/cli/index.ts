// keyway's command line. Each command is a small module under commands/; this file only dispatches
// and turns errors into one line on stderr with a non-zero exit.
import { KeywayError, ProxyError } from '../errors/index.ts';
import type { Command } from './command.ts';
import { agents } from './commands/agents.ts';
import { audit } from './commands/audit.ts';
import { ca } from './commands/ca.ts';
import { doctor } from './commands/doctor/index.ts';
import { env, run } from './commands/env.ts';
import { grants } from './commands/grants.ts';
import { init } from './commands/init.ts';
import { secrets } from './commands/secrets.ts';
import { start } from './commands/start.ts';
import { connect } from './commands/connect.ts';
import { oauth } from './commands/oauth.ts';
import { refresh } from './commands/refresh.ts';
import { revoke } from './commands/revoke.ts';
import type { CommandIO } from './io.ts';

const COMMANDS: Command[] = [start, init, env, run, doctor, ca, grants, secrets, connect, oauth, refresh, revoke, agents, audit];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'keyway: a local proxy that puts credentials on an agent\'s requests, so the agent never holds them.',
    '',
    'usage: keyway COMMAND [options]   (every command takes --help, --json, --home DIR, --config FILE)',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`keyway: unknown command "${name}" (see keyway --help)`);
    return 2;
  }
  const beforeDashes = rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof KeywayError || err instanceof ProxyError) {
      io.err(`keyway ${name}: ${err.message}`);
      return err instanceof KeywayError && err.code === 'usage' ? 2 : 1;
    }
    io.err(`keyway ${name}: unexpected error: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
    return 1;
  }
}

