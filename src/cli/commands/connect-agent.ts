import { agentTerms, ANONYMOUS_AGENT } from '../../credentials/agents.ts';
import { apiKeyGrantInput, readApiKey } from '../../agents/connect/api-key.ts';
import { saveConnectGrant, checkGrantId } from '../../agents/connect/connect-grant.ts';
import { capturedLogin, loginGrantInput } from '../../agents/connect/login-grant.ts';
import { capturedSince } from '../../agents/connect/captured.ts';
import { credentialFilePath, readCredentialFile } from '../../agents/connect/credential-file.ts';
import { importLogin } from '../../agents/connect/import-login.ts';
import { AGENT_TARGET_NAMES, AGENT_TARGETS, type AgentTarget } from '../../agents/connect/targets.ts';
import type { Services } from '../../open-home.ts';
import { findRunningProxy } from '../../running-proxy.ts';
import type { Args } from '../args.ts';
import { audited } from '../audit-change.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { shellQuote } from '../client-env.ts';
import { run } from './env.ts';
import { waitUntilServed } from '../grant-served.ts';

// `keyway connect claude-code | codex | gemini-cli`: the grant a coding agent needs, made from the
// agent's table (agents/connect/targets.ts) in one of two ways. An API key read from stdin becomes an
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
per expiry for every run. --agent ID: the keyway agent that logs in and later runs the agent (the
captured tokens are its alone; needed when agents are configured).
--import: a login made before keyway, taken over: the tokens in the agent's credential file (or
--file PATH) go into the same login_capture grant, and the file is rewritten with placeholders
(atomically, its mode kept). No keyway needs to run for it; the agent's next refresh goes through one.
${AGENT_TARGET_NAMES.map((n) => loginLine(AGENT_TARGETS[n])).join('\n')}
A grant that exists is replaced only with --replace (its key or captured login is dropped).`;

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

/** The command the docs give for running the agent: contained, with its profile (docs/agents/). */
function runLine(target: AgentTarget, agent: string | undefined): string {
  return `keyway run --contain --profile ${target.name}${agent === undefined ? '' : ` --agent ${agent}`} -- ${target.program}`;
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

async function connectLogin(services: Services, args: Args, io: CommandIO, target: AgentTarget, grantId: string, replace: boolean): Promise<number> {
  // Refused before anything changes: a login keyway cannot capture is said, not pretended.
  const login = capturedLogin(target);
  const agent = loginAgent(services, args.string('agent'));
  const running = findRunningProxy(services.paths.runningProxy) !== undefined;
  const watch = args.flag('watch');
  if (!running && !watch) {
    throw usageError(
      `no keyway is running for ${services.paths.home}: the login's token answer must pass a running keyway to be captured. Start one (keyway start), then connect again (or add --watch to set up the grant and run the login yourself later)`,
    );
  }
  const input = loginGrantInput(target, grantId, agent.named);
  const { grant, warnings } = await audited(
    services,
    io,
    { action: replace ? 'grants.replace' : 'grants.create', grant: grantId, agent: agent.named, changed: ['type', 'domains', 'capture'] },
    () => saveConnectGrant(services, input, { replace }),
  );
  for (const line of warnings) io.err(line);
  const runArgs = [...homeArgs(args), ...(agent.named === undefined ? [] : ['--agent', agent.named]), '--', ...login.command];
  const endpoints = login.endpoints.map((e) => `${e.host}${e.path}`).join(', ');
  if (watch) {
    if (args.json) printJson(io, { grant, command: ['keyway', 'run', ...runArgs] });
    else {
      io.out(`grant ${grant.id} watches ${endpoints} for ${target.title}'s login; log in through keyway:`);
      io.out(`  keyway run ${runArgs.map(shellWord).join(' ')}${login.hint ? `   (${login.hint})` : ''}`);
      io.out(`${login.credentialFile} then holds placeholders, and keyway the tokens.`);
      if (!running)
        io.err(
          `keyway: warning: no keyway is running for ${services.paths.home}: start one (keyway start) before you log in, or the login cannot reach its server`,
        );
    }
    return 0;
  }
  // The login starts only once the running keyway watches its endpoint: before, its answer would pass unseen.
  const late = await waitUntilServed(services.paths.home, grant.id, io.env);
  if (late.length > 0) {
    throw usageError(
      `keyway pid ${late.join(', ')} did not take up grant ${grant.id} within 5 s, so the login was not started (its tokens would pass unwatched): check \`keyway status\`, then run \`keyway run ${runArgs.map(shellWord).join(' ')}\``,
    );
  }
  io.err(`keyway: grant ${grant.id} watches ${endpoints}; running ${login.command.join(' ')} under keyway run${login.hint ? `: ${login.hint}` : ''}`);
  const started = new Date();
  const status = await run.run(runArgs, io);
  const captured = await capturedSince(services.store, grant.id, agent.id, started);
  if (status !== 0) {
    io.err(
      `keyway: ${login.command.join(' ')} exited with ${status}${captured.length > 0 ? '' : '; nothing was captured'} (grant ${grant.id} stays: log in again with \`keyway connect ${target.name} --login --replace\`)`,
    );
    return status;
  }
  if (captured.length === 0) {
    io.err(
      `keyway: ${login.command.join(' ')} finished, but no token answer passed keyway at ${endpoints}: the agent may already be logged in (log it out first, or take that login over with --import --replace), or it reached its server some other way`,
    );
    return 1;
  }
  if (args.json) printJson(io, { grant, captured });
  else {
    io.out(`connected ${target.title}'s login: keyway holds ${captured.join(', ')}; ${login.credentialFile} holds placeholders`);
    io.out(`run it with \`${runLine(target, agent.named)}\`: its refreshes go through keyway`);
  }
  return 0;
}

async function connectImport(services: Services, args: Args, io: CommandIO, target: AgentTarget, grantId: string, replace: boolean): Promise<number> {
  const login = capturedLogin(target);
  const agent = loginAgent(services, args.string('agent'));
  // The file is read and judged before anything changes: a file that is no sign-in leaves no grant behind.
  const file = await readCredentialFile(args.string('file') ?? credentialFilePath(login.file, io.env), login.file);
  const input = loginGrantInput(target, grantId, agent.named);
  const { grant, warnings } = await audited(
    services,
    io,
    { action: replace ? 'grants.replace' : 'grants.create', grant: grantId, agent: agent.named, changed: ['type', 'domains', 'capture'] },
    () => saveConnectGrant(services, input, { replace }),
  );
  for (const line of warnings) io.err(line);
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

/** The keyway agent that logs in: the one --agent names, else the local agent where no agents are configured. */
function loginAgent(services: Services, named: string | undefined): { named: string | undefined; id: string } {
  const known = agentTerms(services.config, services.store).map((a) => a.id);
  if (named !== undefined) {
    if (!known.includes(named))
      throw usageError(`no agent "${named}"${known.length === 0 ? ' (there are none: `keyway agents add ID`)' : ` (agents: ${known.join(', ')})`}`);
    return { named, id: named };
  }
  if (known.length > 0) {
    throw usageError(`agents are configured: name the one that logs in and will run the agent with --agent ID (agents: ${known.join(', ')})`);
  }
  return { named: undefined, id: ANONYMOUS_AGENT.id };
}

/** A word as a shell reads it back: bare when it is plain, else quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : shellQuote(word);
}

/** --home and --config as given, so that `keyway run` serves the same home. */
function homeArgs(args: Args): string[] {
  return [...['home', 'config'].flatMap((name) => (args.string(name) === undefined ? [] : [`--${name}`, args.string(name)!]))];
}
