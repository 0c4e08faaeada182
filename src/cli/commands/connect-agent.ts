import { apiKeyGrantInput, readApiKey } from '../../profiles/connect/api-key.ts';
import { saveConnectGrant, checkGrantId } from '../../profiles/connect/connect-grant.ts';
import { capturedLogin } from '../../profiles/connect/login-grant.ts';
import { credentialFilePath, readCredentialFile } from '../../profiles/connect/credential-file.ts';
import { importLogin } from '../../profiles/connect/import-login.ts';
import { AGENT_TARGET_NAMES, AGENT_TARGETS, type AgentTarget } from '../../profiles/connect/targets.ts';
import type { Services } from '../../open-home.ts';
import { findRunningProxy } from '../../running-proxy.ts';
import type { Args } from '../args.ts';
import { audited } from '../audit-change.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { waitUntilServed } from '../grant-served.ts';
import { connectLogin, loginAgent, runLine, saveLoginGrant } from './connect-login.ts';

// `keyway connect claude-code | codex | gemini-cli`: the grant a coding agent needs, made from the
// agent's table (profiles/connect/targets.ts) in one of two ways. An API key read from stdin becomes an
// api_key grant on the vendor's API. A subscription login becomes a login_capture grant on the
// agent's token endpoint, and the agent's own login command then runs under `keyway run`, so that
// its token answer passes keyway: the agent's credential file gets placeholders, keyway the tokens.

/** The options that belong to a provider's OAuth flow, refused for an agent (and the agent's for a provider: connect.ts). */
export const PROVIDER_ONLY = ['scopes', 'domains', 'device', 'client-id', 'client-secret-stdin', 'no-browser', 'timeout', 'mcp', 'client-metadata-url'];
export const AGENT_ONLY = ['api-key-stdin', 'login', 'watch', 'import', 'file', 'replace', 'agent'];

export const AGENT_USAGE = `keyway connect claude-code | codex | gemini-cli [--grant ID] [--replace]
                       (--api-key-stdin | --login [--watch] [--agent ID] | --import [--file PATH] [--agent ID])`;

export const AGENT_HELP = `Coding agents (${AGENT_TARGET_NAMES.join(', ')}): the grant the agent needs, default id its name.
--api-key-stdin (or any key piped in): an api_key grant on the vendor's API with the key read from
stdin (trimmed; one line; never from the command line):
${AGENT_TARGET_NAMES.map((n) => keyLine(AGENT_TARGETS[n])).join('\n')}
Then \`keyway run -- AGENT\`: the agent holds only a placeholder.
--login: the agent's subscription login, owned by keyway. A login_capture grant watches the agent's
token endpoint, then keyway runs the agent's own login command under \`keyway run\` (or, with
--watch, prints it for you to run): its token answer passes the running keyway (needed: keyway
start), the agent's credential file holds placeholders and keyway the real tokens, refreshed once
per expiry for every run. The login runs with the switches of the agent's profile (no telemetry,
update checks or error reports through keyway); Claude Code's runs with its state in a private
folder, and only its login file is kept. A login cut short (Ctrl-C, the agent failing) leaves the
grant holding no login, said by \`keyway grants list\` and \`keyway doctor\`: connect again to
finish it, or \`keyway grants rm ID\`. --agent ID: the keyway agent that logs in and later runs the
agent (the captured tokens are its alone; needed when agents are configured).
--import: a login made before keyway, taken over: the tokens in the agent's credential file (or
--file PATH) go into the same login_capture grant, and the file is rewritten with placeholders
(atomically, its mode kept). No keyway needs to run for it; the agent's next refresh goes through one.
${AGENT_TARGET_NAMES.map((n) => loginLine(AGENT_TARGETS[n])).join('\n')}
A grant that exists is replaced only with --replace (its key or captured login is dropped), but for
a login grant of the agent's that holds no login yet: --login or --import fills it.`;

function keyLine(target: AgentTarget): string {
  const { header, format, hosts } = target.apiKey;
  return `  ${target.title}: ${header}: ${format.replace('{secret}', 'KEY')} on ${hosts.join(', ')}.`;
}

function loginLine(target: AgentTarget): string {
  const { login } = target;
  if (!login.capturable) return wrap(`${target.title}: ${login.flow}: not captured (${login.reason}).`);
  return wrap(`${target.title}: \`${login.command.join(' ')}\`, ${login.flow}; tokens in ${login.credentialFile}.`);
}

/** A long line folded at spaces to the help's width, the rest indented under its first. */
function wrap(line: string, width = 100): string {
  const lines: string[] = [];
  let current = ' ';
  for (const word of line.split(' ')) {
    if (current.trim().length > 0 && current.length + 1 + word.length > width) {
      lines.push(current);
      current = `    ${word}`;
    } else current = `${current} ${word}`;
  }
  return [...lines, current].join('\n');
}

/** Runs `keyway connect AGENT …` once connect.ts has seen the name is an agent's. */
export async function connectAgent(services: Services, args: Args, io: CommandIO, target: AgentTarget): Promise<number> {
  for (const option of PROVIDER_ONLY) {
    if (args.string(option) !== undefined || args.flag(option))
      throw usageError(`--${option} is for OAuth providers; ${target.name} is a coding agent (see keyway connect --help)`);
  }
  const grantId = args.string('grant') ?? target.name;
  checkGrantId(services, grantId);
  const replace = args.flag('replace');
  const login = args.flag('login');
  const imported = args.flag('import');
  if ([args.flag('api-key-stdin'), login, imported].filter(Boolean).length > 1) throw usageError('give one of --api-key-stdin, --login and --import');
  if (args.flag('watch') && !login) throw usageError('--watch is for --login: it prints the login command instead of running it');
  if (args.string('file') !== undefined && !imported) throw usageError('--file is for --import: the credential file to take over');
  if (args.string('agent') !== undefined && !login && !imported)
    throw usageError('--agent is for --login and --import: an API key grant serves every agent given it');
  if (login) return connectLogin(services, args, io, target, grantId, replace);
  if (imported) return connectImport(services, args, io, target, grantId, replace);
  // No way named: a key piped in is the key (`op read … | keyway connect codex`); a terminal gets the choice.
  if (!args.flag('api-key-stdin') && process.stdin.isTTY) {
    throw usageError(`connect ${target.name}: pipe its API key in with --api-key-stdin, or log in with --login (see keyway connect --help)`);
  }
  const piped = await io.readStdin();
  // Nothing asked and nothing piped (a script's stdin, an IDE's terminal): say both ways, not "pipe it in".
  if (!args.flag('api-key-stdin') && piped.trim() === '') {
    throw usageError(
      `no API key came on standard input for ${target.name}, and no way was named: pipe its key in (printf %s "$KEY" | keyway connect ${target.name} --api-key-stdin), or log in with --login (see keyway connect --help)`,
    );
  }
  const key = readApiKey(piped);
  const input = apiKeyGrantInput(target, grantId, key);
  const { grant, warnings } = await audited(
    services,
    io,
    { action: replace ? 'grants.replace' : 'grants.create', grant: grantId, changed: ['type', 'domains', 'inject', 'secret'] },
    () => saveConnectGrant(services, input, { replace }),
  );
  if (args.json) printJson(io, grant);
  else {
    const { header, hosts, variable } = target.apiKey;
    io.out(`connected ${target.title} with an API key: grant ${grant.id} puts it in ${header} on ${hosts.join(', ')}`);
    io.out(`run it with \`${runLine(target, undefined)}\`: it gets ${variable}=keyway-placeholder, keyway puts the key on its requests`);
  }
  for (const line of warnings) io.err(line);
  return 0;
}

async function connectImport(services: Services, args: Args, io: CommandIO, target: AgentTarget, grantId: string, replace: boolean): Promise<number> {
  const login = capturedLogin(target);
  const agent = loginAgent(services, args.string('agent'));
  // The file is read and judged before anything changes: a file that is no sign-in leaves no grant behind.
  const file = await readCredentialFile(args.string('file') ?? credentialFilePath(login.file, io.env), login.file);
  const grant = await saveLoginGrant(services, io, target, grantId, agent, replace);
  const result = await audited(services, io, { action: 'grants.import_login', grant: grantId, agent: agent.id, changed: ['captured'] }, () =>
    importLogin(services.store, file, { grant: grant.id, agent: agent.id, login }),
  );
  // A running keyway takes the grant and its tokens up within a store read; said when one does not.
  if (findRunningProxy(services.paths.runningProxy) !== undefined) {
    const late = await waitUntilServed(services.paths.home, grant.id, io.env);
    if (late.length > 0) io.err(`keyway: warning: keyway pid ${late.join(', ')} has not taken up grant ${grant.id} yet: check \`keyway status\``);
  }
  if (args.json) printJson(io, { grant, imported: result });
  else io.out(`imported ${target.title}'s login into grant ${grant.id}: keyway holds ${result.fields.join(', ')}; ${result.file} holds placeholders`);
  return 0;
}
