import { spawn } from 'node:child_process';
import { parse } from '../args.ts';
import { agentKeyFor, clientEnvironment, shellQuote } from '../client-env.ts';
import type { Command } from '../command.ts';
import { configFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import type { Args } from '../args.ts';

function variablesFor(args: Args, io: CommandIO): Record<string, string> {
  const config = configFor(args, io);
  const agentId = args.string('agent');
  const agent = agentId === undefined ? undefined : { id: agentId, key: agentKeyFor(config, agentId, io.env) };
  return clientEnvironment(config, agent);
}

export const env: Command = {
  name: 'env',
  summary: 'print the variables that send a program through keyway',
  usage: `keyway env [--agent ID] [--json]

Prints export lines: eval "$(keyway env)". With --agent, the proxy URL carries the agent's
credentials; its key comes from KEYWAY_AGENT_KEY (or the config's reference for config agents).`,
  async run(argv, io) {
    const args = parse(argv, { agent: { type: 'string' } });
    const vars = variablesFor(args, io);
    if (args.json) printJson(io, vars);
    else for (const [name, value] of Object.entries(vars)) io.out(`export ${name}=${shellQuote(value)}`);
    return 0;
  },
};

export const run: Command = {
  name: 'run',
  summary: 'run a command with those variables set',
  usage: `keyway run [--agent ID] -- CMD [ARGS…]

Runs CMD with the variables of \`keyway env\` added to the environment; exits with its status.`,
  async run(argv, io) {
    const split = argv.indexOf('--');
    const own = split === -1 ? argv : argv.slice(0, split);
    const command = split === -1 ? [] : argv.slice(split + 1);
    const args = parse(own, { agent: { type: 'string' } });
    if (command.length === 0) throw usageError('usage: keyway run [--agent ID] -- CMD [ARGS…]');
    const vars = variablesFor(args, io);
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...io.env, ...vars } });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', (err) => reject(usageError(`cannot run ${command[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
        child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
    } finally {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    }
  },
};
