// keyway's command line. Each command is a small module under commands/; this file only dispatches
// and turns errors into one line on stderr with a non-zero exit.
import { KeywayError, ProxyError } from '../errors/index.ts';
import type { Command } from './command.ts';
import { didYouMean } from './did-you-mean.ts';
import { GLOBAL_OPTIONS, splitCommandLine } from './global-options.ts';
import type { CommandIO } from './io.ts';
import { keywayCommit, keywayVersion } from '../version.ts';

/**
 * Commands load on demand: `keyway start` then never loads what only other commands use (the
 * config validator among them, which the proxy runs in a worker), keeping the proxy process small.
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'start', summary: 'run the proxy and the admin API', load: async () => (await import('./commands/start.ts')).start },
  { name: 'init', summary: 'make the config, CA and master key where missing', load: async () => (await import('./commands/init.ts')).init },
  {
    name: 'status',
    summary: 'is a proxy running for this home: pid, addresses, uptime, counts',
    load: async () => (await import('./commands/status.ts')).status,
  },
  { name: 'stop', summary: 'stop the proxy running for this home, gracefully', load: async () => (await import('./commands/stop.ts')).stop },
  {
    name: 'reload',
    summary: 'make the proxy running for this home re-read its config',
    load: async () => (await import('./commands/reload.ts')).reload,
  },
  { name: 'env', summary: 'print the variables that send a program through keyway', load: async () => (await import('./commands/env.ts')).env },
  { name: 'run', summary: 'run a command with those variables set', load: async () => (await import('./commands/env.ts')).run },
  {
    name: 'delegate',
    summary: 'as an agent (under keyway run), mint or revoke a child agent of your own through the proxy',
    load: async () => (await import('./commands/delegate.ts')).delegate,
  },
  {
    name: 'profiles',
    summary: "list and show the coding agents' profiles (keyway run --profile NAME)",
    load: async () => (await import('./commands/profiles.ts')).profiles,
  },
  {
    name: 'contain',
    summary: 'review what a contained command wrote that was kept aside (would run later)',
    load: async () => (await import('./commands/contain.ts')).contain,
  },
  {
    name: 'doctor',
    summary: 'check the CA, the proxy, and that curl, node, python and git go through keyway',
    load: async () => (await import('./commands/doctor/index.ts')).doctor,
  },
  {
    name: 'service',
    summary: 'run keyway as its own system user (install, status, uninstall)',
    load: async () => (await import('./commands/service.ts')).service,
  },
  { name: 'ca', summary: "print the CA's path and fingerprint", load: async () => (await import('./commands/ca.ts')).ca },
  { name: 'grants', summary: 'list, show, add and remove grants', load: async () => (await import('./commands/grants.ts')).grants },
  { name: 'secrets', summary: "set a grant's secret", load: async () => (await import('./commands/secrets.ts')).secrets },
  {
    name: 'connect',
    summary: 'connect an OAuth account (browser or device code) and store it as a grant',
    load: async () => (await import('./commands/connect.ts')).connect,
  },
  { name: 'oauth', summary: 'print a consent URL (with PKCE) for an OAuth flow run elsewhere', load: async () => (await import('./commands/oauth.ts')).oauth },
  {
    name: 'refresh',
    summary: "refresh an OAuth or minted grant's token (or an AWS role's credentials) now",
    load: async () => (await import('./commands/refresh.ts')).refresh,
  },
  { name: 'revoke', summary: 'revoke a grant at its provider and stop injecting it', load: async () => (await import('./commands/revoke.ts')).revoke },
  {
    name: 'approvals',
    summary: 'list, approve and deny requests that rules send to a person',
    load: async () => (await import('./commands/approvals.ts')).approvals,
  },
  { name: 'agents', summary: 'add, list and remove agents and their leases', load: async () => (await import('./commands/agents.ts')).agents },
  {
    name: 'store',
    summary: "migrate the PostgreSQL store's schema; copy a store between backends",
    load: async () => (await import('./commands/store.ts')).store,
  },
  {
    name: 'key',
    summary: "what keeps the store's master key; wrap it with a KMS key; rotate it",
    load: async () => (await import('./commands/key.ts')).key,
  },
  {
    name: 'spend',
    summary: 'what model traffic used and cost, per agent and model, and where each budget stands',
    load: async () => (await import('./commands/spend.ts')).spend,
  },
  {
    name: 'policy',
    summary: 'the policy in effect (YAML rules and Cedar files), and proofs: check, lint, test, diff',
    load: async () => (await import('./commands/policy.ts')).policy,
  },
  { name: 'audit', summary: 'read and verify the audit log', load: async () => (await import('./commands/audit.ts')).audit },
  {
    name: 'fetch',
    summary: 'send one request through keyway and print the response body',
    load: async () => (await import('./commands/fetch.ts')).fetchCommand,
  },
  {
    name: 'completion',
    summary: 'print a shell completion script (bash, zsh or fish)',
    load: async () => (await import('./commands/completion.ts')).completion,
  },
];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "keyway: a local proxy that puts credentials on an agent's requests, so the agent never holds them.",
    '',
    'usage: keyway [--home DIR] [--config FILE] [--json] COMMAND [options]',
    '       (--home, --config and --json go before or after COMMAND; every command also takes --help)',
    '       keyway --version',
    '',
    'home: --home DIR, else KEYWAY_HOME, else ~/.keyway',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  const { name, rest, topLevel } = splitCommandLine(argv);
  if (topLevel === '--version') {
    // The commit too: a version names every commit between two releases alike.
    io.out(`${keywayVersion()} (commit ${keywayCommit()})`);
    return 0;
  }
  if (name === undefined) {
    io.out(help());
    return topLevel === '--help' ? 0 : 1;
  }
  if (name.startsWith('-')) {
    const guess = didYouMean(name, [...GLOBAL_OPTIONS, '--help', '--version']);
    io.err(`keyway: unknown option "${name}" before the command${guess} (see keyway --help)`);
    return 2;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    const guess = didYouMean(
      name,
      COMMANDS.map((c) => c.name),
      (command) => `keyway ${command}`,
    );
    io.err(`keyway: unknown command "${name}"${guess} (see keyway --help)`);
    return 2;
  }
  const command = await entry.load();
  const beforeDashes = command.ownArgs ? command.ownArgs(rest) : rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    io.out(command.help ? await command.help(rest, io) : command.usage);
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
