import { spawn } from 'node:child_process';
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { type CommandUser, commandUser } from '../../contain/command-user.ts';
import { unreachableProgram } from '../../contain/program-reach.ts';
import { containedEnvironment, SecretVariableRefused } from '../../contain/environment.ts';
import { gitConfiguredPaths } from '../../contain/git-configured.ts';
import { makeMissing, type MissingWritable, WritableRefused, writableTarget } from '../../contain/missing-writable.ts';
import { configuredHidden, keywayFiles } from '../../contain/keyway-files.ts';
import {
  admittedConfig,
  boundSockets,
  homeFolders,
  homeLinksInto,
  withMountAliases,
  keywayHomes,
  outermost,
  ownedFolders,
  programRoots,
} from '../../contain/home-view.ts';
import { defaultHidden, folderPlaceProblem, isWithin, planProblem, rootWorkdirProblem, SCRATCH_PLACES, type SandboxPlan } from '../../contain/sandbox.ts';
import type { Config } from '../../config/index.ts';
import { parse } from '../args.ts';
import { closestName } from '../did-you-mean.ts';
import {
  agentKeyFor,
  awsCaVariables,
  CA_VARIABLES,
  checkCaFiles,
  clientEnvironment,
  grantsForAgent,
  type PlaceholderGrant,
  placeholderVariables,
  shellQuote,
} from '../client-env.ts';
import type { Command } from '../command.ts';
import { type ClientConfig, clientConfig } from '../door-view.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import type { Args } from '../args.ts';
import { nodeBypassWarning, nodeCommandRuns, runsOnNode } from '../user-node.ts';
import { noAgentLine } from '../agent-hint.ts';
import { mintRunChild, revokeRunChild, type RunChild } from '../run-delegate.ts';
import { agentKeyRefused } from '../agent-key-check.ts';
import { identityTokenCredentials } from '../identity-token.ts';
import { keywayPaths, resolveHome } from '../../paths.ts';
import { findRunningProxy } from '../../running-proxy.ts';
import { parseDomainPattern } from '../../config/domain-pattern.ts';
import { excludedByNoProxy, noProxyWarning, urlsIn } from '../no-proxy.ts';
import type { KeptState, ProfileRunPlan } from '../../profiles/run/index.ts';

// Loaded only where --profile names one: a profile's loader brings yaml and zod (170 modules), a
// third of a plain `keyway run`'s start with a keyway running (docs/perf/startup.md).
const profiles = () => import('../../profiles/run/index.ts');

export interface EnvVariables {
  /** Proxy and CA variables: always set, over whatever the caller has. */
  proxy: Record<string, string>;
  /** Placeholder credentials (NAME=keyway-placeholder) for the grants the agent may use. */
  placeholders: Record<string, string>;
  /** Agents are configured and none was given: every request through these variables gets 407. */
  noAgent: boolean;
  /** No proxy runs for this home (data/proxy.json): the proxy variables point at nothing yet. */
  noProxyRunning: boolean;
  /** The grants the agent may use (a profile's key placeholders depend on them). */
  grants: PlaceholderGrant[];
}

/** What `keyway env` prints and `keyway run` sets (doctor runs clients with exactly these). */
export async function variablesFor(args: Args, io: CommandIO, proxyAddress?: string, client?: ClientConfig): Promise<EnvVariables> {
  const { config, stored } = client ?? (await clientConfig(args, io));
  // Never hand out a path to a CA file that is not there: clients would fail on it later, obscurely.
  checkCaFiles(config);
  const agentId = args.string('agent');
  const byToken = identityTokenCredentials(args, config);
  const { grants, agentsConfigured, unknownAgent } = await grantsForAgent(config, agentId, io.env, (message) => io.err(`keyway: ${message}`), stored);
  if (agentId !== undefined && unknownAgent) throw noSuchAgent(agentId, unknownAgent.known);
  const agent = byToken ?? (agentId === undefined ? undefined : { id: agentId, key: agentKeyFor(config, agentId, io.env) });
  const proxy = { ...clientEnvironment(config, agent, proxyAddress), ...awsCaVariables(config, grants) };
  const placeholders = placeholderVariables(grants);
  // A placeholder never replaces a proxy or CA variable.
  for (const name of Object.keys(proxy)) delete placeholders[name];
  const noProxyRunning = findRunningProxy(keywayPaths(config).runningProxy) === undefined;
  return { proxy, placeholders, noAgent: agentsConfigured && agent === undefined, noProxyRunning, grants };
}

export const env: Command = {
  name: 'env',
  usage: `keyway env [--agent ID | --identity-token FILE] [--json]

Prints export lines: eval "$(keyway env)". The proxy address is where a running keyway on this
home says it listens (data/proxy.json; it may have been started with --listen), else proxy.listen.
With --agent, the proxy URL carries the agent's credentials; its key comes from KEYWAY_AGENT_KEY
(or the config's reference for config agents). An agent that signs in with an identity token
(identities:) gives --identity-token FILE instead: the proxy URL carries the token as jwt:TOKEN.

Also prints placeholder credentials, set to keyway-placeholder, in the variables SDKs read for the
grants the agent may use (every grant without --agent): the provider preset's variables
(GITHUB_TOKEN, GH_TOKEN, …) and, for api_key and bearer grants on well-known hosts,
OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, …, and AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (with AWS_CA_BUNDLE) for aws_sigv4 grants, so SDKs that insist on a key start.
For each grant with inject: {body: true} (--body), KEYWAY_PLACEHOLDER_<ID> holds keyway-placeholder-<id>:
write it where that grant's secret goes in a request body or WebSocket message. keyway
replaces whatever credential a request carries; the real secret is never printed. A variable
already set in your environment is left as it is (like \`keyway run\`), and said so on stderr.
Before the CA exists (keyway init or keyway start make it), env refuses rather than print its path.
Where agents are configured and no --agent is given, a warning on stderr says requests will get 407.`,
  async run(argv, io) {
    const args = parse(argv, { agent: { type: 'string' }, 'identity-token': { type: 'string' } });
    const { proxy, placeholders, noAgent } = await variablesFor(args, io);
    // stderr: stdout is for eval, and the line must reach the person who typed the command.
    if (noAgent) io.err(`keyway: warning: ${noAgentLine('env')}`);
    const kept = Object.keys(placeholders).filter((name) => io.env[name] !== undefined);
    for (const name of kept) delete placeholders[name];
    if (kept.length > 0) {
      io.err(
        `keyway: ${kept.join(', ')} already set in your environment: kept as it is, not replaced by a placeholder (unset it first if programs run behind keyway should not see it)`,
      );
    }
    const vars = { ...proxy, ...placeholders };
    if (args.json) printJson(io, vars);
    else for (const [name, value] of Object.entries(vars)) io.out(`export ${name}=${shellQuote(value)}`);
    return 0;
  },
};

/** keyway's own options that take a value: the word after them is not the command. */
const RUN_VALUE_OPTIONS = new Set([
  '--agent',
  '--identity-token',
  '--home',
  '--config',
  '--port',
  '--env',
  '--allow-write',
  '--allow-socket',
  '--allow-read',
  '--profile',
  '--grants',
  '--ttl',
]);

/**
 * keyway's options and the command, split at `--`, or else at the first word that is not an
 * option: in `keyway run curl -sS URL`, -sS belongs to curl.
 */
export function splitRunArgs(argv: readonly string[]): { own: string[]; command: string[] } {
  const dashes = argv.indexOf('--');
  if (dashes !== -1) return { own: argv.slice(0, dashes), command: argv.slice(dashes + 1) };
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) i += RUN_VALUE_OPTIONS.has(argv[i]!) ? 2 : 1;
  return { own: argv.slice(0, i), command: argv.slice(i) };
}

export const run: Command = {
  name: 'run',
  usage: `keyway run [--agent ID | --identity-token FILE] [--delegate [--grants G,…] [--ttl D]] [--profile NAME] [--contain [--port N…] [--env NAME…] [--allow-read PATH…] [--allow-write PATH…] [--allow-socket PATH…] [--outside-home]] [--] CMD [ARGS…]

Runs CMD with the variables of \`keyway env\` added to the environment; exits with its status.
Options after CMD are CMD's (keyway run curl -sS URL); \`--\` is needed only before a CMD that starts
with -. The proxy and CA variables replace any the caller has set. A placeholder credential
(OPENAI_API_KEY=keyway-placeholder, …) is only added where the caller has not set that variable:
one already set is passed through unchanged. When CMD runs on node and the node on your PATH
is older than 24, run warns that it will go around keyway (older Node ignores HTTPS_PROXY). It also
warns when no proxy runs for this home, and when agents are configured and no --agent is given (407).

--contain (Linux): CMD runs in its own network namespace where keyway is the only way out, as the
agent --agent names (default: the local agent) with no key and no proxy setting: every TCP
connection goes to keyway (routed by TLS server name or HTTP Host), names resolve inside, the system
CA bundle there holds keyway's CA; other UDP, ICMP and IPv6 lead nowhere. This process runs the
keyway that serves it. CMD holds no capability there (it cannot remove the rules). TLS goes to
port 443, to a port the agent's grants name (api.example.com:8443), or to one --port names (given
again for more); TLS to any other port is refused (no_destination): a server name says nothing of
the port. Plain HTTP goes to the port its Host names. CMD's environment is an allow-list, not
yours: PATH, HOME, USER, LOGNAME, SHELL, TERM, COLORTERM, LANG, LANGUAGE, LC_*, TZ, TMPDIR, EDITOR,
VISUAL, PAGER, NO_COLOR, FORCE_COLOR, COLUMNS, LINES and XDG_*_HOME, the CA variables and the
placeholders; --env NAME (again for more) passes one more. keyway's secrets (a config env:
reference, KEYWAY_*) never pass, --env or not. CMD has its own PID namespace (no host process in
sight or reach) and a new session; it sees the host read-only, every home folder empty but for what
the run names (the working folder, PATH's programs, the profile's state, --allow-read PATH and
--allow-write PATH, a ~/.gitconfig that runs nothing), every keyway home absent whatever is named,
private /tmp, /var/tmp, /run and /dev/shm, and a HOME of its own that is dropped when it exits.
The working folder and --allow-write folders must be in a home folder (not the home itself) or in
/tmp or /var/tmp; --outside-home admits another (as root, the command then writes it as
its owner does). It writes only in the folder keyway run started in (its working directory) and where
--allow-write PATH says (again for more; a missing one inside your home is made first), through an overlay: its changes reach the host when it
exits, and what git, a shell or PATH would run later is kept aside (keyway contain review). It can make no Unix socket, unless --allow-socket PATH
names a host socket it may reach (audited; every other socket stays out of reach). Run as root, CMD runs as
the user behind sudo, else as nobody: never as root. Without the privileges it needs (root, or
unprivileged user namespaces) or bwrap (bubblewrap) it fails with contain_unavailable (exit 2),
never running CMD uncontained. docs/containment.md says what it can and cannot reach.

--delegate: CMD runs as a fresh child of the agent (keyway delegate), named PARENT-run-…, minted
through the running keyway with the agent's own key: --grants a subset of the agent's (default: all
of them), --ttl within the agent's (default 1h or less). Its key is revoked when CMD exits (an exit,
a failure, a signal run forwards); if run itself is killed, the TTL ends it. CMD never sees the
agent's key.

--profile NAME: a coding agent's profile (keyway profiles list; built in: claude-code, codex,
gemini-cli; your own in profiles/NAME.yaml in keyway's home) adds what that agent needs: CMD
defaults to its command; its env is set; each key variable it reads gets the placeholder where a
grant of the agent (api_key or bearer) covers that key's host; each CA variable it reads points at
keyway's CA; its state folders and files are made where missing (0700, 0600). With --contain, its
state is keyway's own copy for the agent (profiles-state/NAME/ in keyway's home), writable, its pass_env variables are kept, its ports and sockets reachable.
docs/agents/README.md describes a profile.`,
  // `keyway run curl --help` is curl's help, not keyway's.
  ownArgs: (argv) => splitRunArgs(argv).own,
  async run(argv, io) {
    const split = splitRunArgs(argv);
    const args = parse(split.own, {
      agent: { type: 'string' },
      'identity-token': { type: 'string' },
      contain: { type: 'boolean' },
      port: { type: 'string', multiple: true },
      env: { type: 'string', multiple: true },
      'allow-write': { type: 'string', multiple: true },
      'allow-socket': { type: 'string', multiple: true },
      'allow-read': { type: 'string', multiple: true },
      'outside-home': { type: 'boolean' },
      profile: { type: 'string' },
      delegate: { type: 'boolean' },
      grants: { type: 'string' },
      ttl: { type: 'string' },
    });
    // A profile (profiles/run/) adds its part to the run, and gives CMD when none is given.
    const profileName = args.string('profile');
    const client = profileName === undefined ? undefined : await clientConfig(args, io);
    const profile =
      profileName === undefined || client === undefined
        ? undefined
        : (await profiles()).profileRunPlan(profileName, {
            config: client.config,
            configFile: args.string('config'),
            env: io.env,
            contain: args.flag('contain'),
          });
    const command = split.command.length > 0 ? split.command : (profile?.command ?? []);
    if (command.length === 0)
      throw usageError(
        'usage: keyway run [--agent ID] [--profile NAME] [--contain [--port N…] [--env NAME…] [--allow-read PATH…] [--allow-write PATH…] [--allow-socket PATH…] [--outside-home]] [--] CMD [ARGS…]',
      );
    if (args.strings('port').length > 0 && !args.flag('contain')) throw usageError('--port is for --contain: without it, CMD reaches keyway by HTTPS_PROXY');
    if (args.strings('env').length > 0 && !args.flag('contain')) throw usageError('--env is for --contain: without it, CMD gets your whole environment');
    if (args.flag('outside-home') && !args.flag('contain')) throw usageError('--outside-home is for --contain');
    for (const option of ['allow-write', 'allow-socket', 'allow-read']) {
      if (args.strings(option).length > 0 && !args.flag('contain')) throw usageError(`--${option} is for --contain: without it, CMD reaches all you can`);
    }
    if (args.flag('contain') && args.string('identity-token') !== undefined) {
      throw usageError('--identity-token is for the proxy URL; a contained command has none: name its agent with --agent ID');
    }
    if (!args.flag('delegate') && (args.string('grants') !== undefined || args.string('ttl') !== undefined)) {
      throw usageError('--grants and --ttl are for --delegate (the child CMD runs as)');
    }
    if (args.flag('delegate') && args.flag('contain')) throw usageError('--delegate is not yet for --contain');
    for (const note of profile?.notes ?? []) io.err(`keyway: ${note}`);
    if (args.flag('contain')) return runContainedCommand(args, io, command, profile, client);
    const { proxy, placeholders, noAgent, noProxyRunning, grants } = await variablesFor(args, io, undefined, client);
    if (noAgent) io.err(`keyway: warning: ${noAgentLine('run')}`);
    const noModelGrant = profile && (await profiles()).noModelGrantWarning(profile.loaded, grants, args.string('agent'));
    if (noModelGrant !== undefined) io.err(`keyway: ${noModelGrant}`);
    const noProxy = proxy['NO_PROXY'] ?? '';
    for (const url of urlsIn(command.slice(1))) if (excludedByNoProxy(url.hostname, noProxy)) io.err(`keyway: warning: ${noProxyWarning(url, noProxy)}`);
    if (noProxyRunning) {
      io.err(
        `keyway: warning: no keyway proxy is running for ${resolveHome(args.string('home'), io.env)}, so ${command[0]}'s requests through it will fail to connect: start one with \`keyway start\` (same home) first`,
      );
    } else if (args.string('agent') !== undefined && proxy['HTTPS_PROXY'] !== undefined && (await agentKeyRefused(proxy['HTTPS_PROXY']))) {
      // Said here, naming the agent, rather than as the client's bare "407" once the command runs.
      io.err(
        `keyway: proxy_auth_required: the running keyway refused agent ${args.string('agent')}'s key (from ${io.env['KEYWAY_AGENT_KEY'] ? 'KEYWAY_AGENT_KEY' : "the config's agents key reference"}): give its key in KEYWAY_AGENT_KEY (keyway agents rotate-key ${args.string('agent')} makes a new one); ${command[0]} was not run`,
      );
      return 2;
    }
    if (await runsOnNode(command[0]!, io.env['PATH'])) {
      const node = await nodeCommandRuns(command[0]!, io.env);
      const warning = node === undefined ? undefined : nodeBypassWarning(node);
      if (warning !== undefined) io.err(`keyway: warning: ${warning}`);
    }
    let profileEnv: Record<string, string> = {};
    if (profile !== undefined) {
      const { keyPlaceholders, makeProfileState } = await profiles();
      Object.assign(placeholders, keyPlaceholders(profile, grants));
      // The CA variables the agent honours besides keyway's own: the bundle, as SSL_CERT_FILE is.
      for (const name of profile.caVariables) proxy[name] ??= proxy['SSL_CERT_FILE']!;
      profileEnv = profile.env;
      for (const line of makeProfileState(profile)) io.err(`keyway: ${line}`);
    }
    // --delegate: CMD runs as a fresh child of the agent, revoked when CMD exits (run-delegate.ts).
    let delegated: RunChild | undefined;
    if (args.flag('delegate')) {
      if (noProxyRunning) throw usageError('--delegate mints through the running keyway: start one first (`keyway start`)');
      const minted = await mintRunChild(proxy, { grants: args.list('grants'), ttl: args.string('ttl') }, io);
      if (minted === undefined) return 2;
      delegated = minted;
    }
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...placeholders, ...io.env, ...profileEnv, ...proxy } });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    // A delegated run also outlives a hang-up long enough to revoke its child.
    const signals: NodeJS.Signals[] = delegated === undefined ? ['SIGINT', 'SIGTERM'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const signal of signals) process.on(signal, forward);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', (err) => reject(usageError(`cannot run ${command[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
        child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
    } finally {
      if (delegated !== undefined) await revokeRunChild(delegated, io);
      for (const signal of signals) process.off(signal, forward);
    }
  },
};

/** The proxy variables a contained command must not follow: there is no proxy to reach in there, only keyway's redirect. */
const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy', 'NODE_USE_ENV_PROXY'];

/** keyway run --contain: checks first, then the command in its namespaces (contain/run.ts). */
async function runContainedCommand(
  args: Args,
  io: CommandIO,
  command: string[],
  profile: ProfileRunPlan | undefined,
  loaded: ClientConfig | undefined,
): Promise<number> {
  const fromRoot = rootWorkdirProblem(realpathSync(process.cwd()));
  if (fromRoot !== undefined) {
    io.err(`keyway: contain_refused: ${fromRoot}; CMD was not run`);
    return 2;
  }
  const user = commandUser(io.env);
  // Loaded here, not at the top: a plain `keyway run` needs none of containment's modules.
  const { containUnavailable, runContained } = await import('../../contain/run.ts');
  const unavailable = containUnavailable(user);
  if (unavailable !== undefined) {
    io.err(`keyway: contain_unavailable: ${unavailable}; CMD was not run`);
    return 2;
  }
  // Read once: a profile's run has it already.
  const { config, stored } = loaded ?? (await clientConfig(args, io));
  checkCaFiles(config);
  const agent = args.string('agent');
  const { grants, unknownAgent, agentsConfigured } = await grantsForAgent(config, agent, io.env, (message) => io.err(`keyway: ${message}`), stored);
  if (agent !== undefined && unknownAgent) throw noSuchAgent(agent, unknownAgent.known);
  // Without --agent the command is the local agent, which exists only where no agents are
  // configured: every connection would be refused, seen inside as a bare TLS error.
  if (agent === undefined && agentsConfigured) {
    throw usageError('agents are configured, so a contained command is one of them: name it with --agent ID (`keyway agents list`)');
  }
  const profileParts = profile === undefined ? undefined : await profiles();
  const noModelGrant = profile && profileParts?.noModelGrantWarning(profile.loaded, grants, agent);
  if (noModelGrant !== undefined) io.err(`keyway: ${noModelGrant}`);
  let env: Record<string, string>;
  try {
    env = {
      ...placeholderVariables(grants),
      ...(profile === undefined || profileParts === undefined ? {} : profileParts.keyPlaceholders(profile, grants)),
      ...containedEnvironment(io.env, [...args.strings('env'), ...(profile?.passEnv ?? [])], config),
      ...profile?.env,
    };
  } catch (err) {
    if (err instanceof SecretVariableRefused) throw usageError(err.message);
    throw err;
  }
  for (const name of PROXY_VARIABLES) delete env[name];
  const caVariables = [...new Set([...CA_VARIABLES, ...Object.keys(awsCaVariables(config, grants)), ...(profile?.caVariables ?? [])])];
  let sandbox: SandboxPlan;
  let missing: MissingWritable[];
  let notes: string[];
  // A profile's state, contained, is a folder keyway keeps for the agent (profiles/run/contained-state.ts), never the person's own.
  const kept =
    profile === undefined || profileParts === undefined
      ? []
      : profileParts.keptStatePlan(config.home, agent, profile.loaded.name, profile.state, io.env['HOME'] ?? '/');
  try {
    ({ plan: sandbox, missing, notes } = sandboxPlan(config, args, io.env, user, command, profile, kept));
  } catch (err) {
    if (!(err instanceof ContainRefused)) throw err;
    io.err(`keyway: contain_refused: ${err.message}; CMD was not run`);
    return 2;
  }
  const unreachable = await unreachableProgram(command, env, user, sandbox);
  if (unreachable !== undefined) {
    io.err(`keyway: contain_refused: ${unreachable}; CMD was not run`);
    return 2;
  }
  const sockets = sandbox.sockets;
  if (process.getuid?.() === 0) io.err(`keyway: CMD runs as uid ${user.uid}, ${user.why}: never as root`);
  const ports = [...grantPorts(grants.flatMap((g) => g.domains)), ...args.strings('port').map(portNumber), ...(profile?.ports ?? [])];
  // Last, once nothing can refuse the run: an --allow-write path the recipe names but a first run lacks.
  try {
    for (const line of makeMissing(missing)) io.err(`keyway: ${line}`);
    for (const line of notes) io.err(`keyway: ${line}`);
    if (profile !== undefined && profileParts !== undefined) {
      for (const line of profileParts.makeKeptState(kept)) io.err(`keyway: ${line}`);
      for (const line of profileParts.seedLogin(profile.loaded.name, io.env['HOME'] ?? '/', kept)) io.err(`keyway: ${line}`);
    }
  } catch (err) {
    if (err instanceof WritableRefused) throw usageError(`--allow-write: ${err.message}`);
    throw err;
  }
  return runContained({
    config,
    configFile: args.string('config'),
    agent,
    command,
    ports,
    env,
    caVariables,
    user,
    sandbox,
    sockets,
    keywayEnv: io.env,
    err: (line) => io.err(line),
  });
}

/** What the contained command sees of the host's files (contain/sandbox.ts), from the options and the config. */
function sandboxPlan(
  config: Config,
  args: Args,
  env: NodeJS.ProcessEnv,
  user: CommandUser,
  command: readonly string[],
  profile: ProfileRunPlan | undefined,
  kept: readonly KeptState[],
): { plan: SandboxPlan; missing: MissingWritable[]; notes: string[] } {
  const workdir = realpathSync(process.cwd());
  const homes = [...new Set([env['HOME'], user.home].filter((home): home is string => home !== undefined && isAbsolute(home)))];
  const missing: MissingWritable[] = [];
  const notes: string[] = [];
  const writable = args.strings('allow-write').map((path) => {
    try {
      const target = writableTarget(path, homes);
      if (target.missing !== undefined) missing.push(target.missing);
      return target.path;
    } catch (err) {
      if (err instanceof WritableRefused) throw usageError(`--allow-write ${path}: ${err.message}`);
      throw err;
    }
  });
  // A program's own state folder named to write (~/.aider): its changes land live, judged, and that
  // program reads it at its next start outside. Said, since a profile keeps an agent's state apart.
  for (const path of writable) {
    const home = homes.find((h) => isWithin(path, h) && path !== h);
    if (home !== undefined && relative(home, path).startsWith('.'))
      notes.push(
        `--allow-write ${path}: a program's own state, which it reads when it starts outside; what the command writes there lands when it exits (for a coding agent, --profile keeps its state apart: keyway profiles list)`,
      );
  }
  const readable = args.strings('allow-read').map((path) => existingPath(path, '--allow-read'));
  const sockets = [...args.strings('allow-socket'), ...(profile?.sockets ?? [])].map((path) => {
    const real = existingPath(path, '--allow-socket');
    if (!statSync(real).isSocket()) throw usageError(`--allow-socket ${path}: not a Unix socket`);
    return real;
  });
  const runtime = env['XDG_RUNTIME_DIR'];
  const own = resolveHidden(keywayFiles(config, args.string('config')));
  // Default deny over the homes (contain/home-view.ts): every home and the person's own folders are
  // empty inside, but for what the run names.
  const allHomes = homeFolders(homes);
  const callerUid = process.getuid?.() ?? 0;
  // A home bound from elsewhere (/home/alice from /srv/store/alice) is absent at both names.
  const absent = outermost(withMountAliases([...allHomes, ...withRealPaths(homes), ...ownedFolders([callerUid, user.uid])]));
  const everyHome = withRealPaths([...homes, ...allHomes]);
  const pathFolders = withRealPaths([...(env['PATH'] ?? '').split(':'), env['XDG_CONFIG_HOME'] ?? ''].filter((dir) => isAbsolute(dir)));
  const home = env['HOME'];
  if (home !== undefined && isAbsolute(home)) {
    for (const config of admittedConfig(home)) {
      // One the command's uid cannot reach is left out inside (contain/sandbox.ts), as a program folder is.
      if (config.shown) readable.push(config.path);
      else if (!config.shown) notes.push(`${config.path} is not shown to the command: ${config.why} (only settings that run nothing are)`);
    }
  }
  // PATH's folders alone (not XDG_CONFIG_HOME, which pathFolders holds for the judge), each where it really is.
  const pathOnly = (env['PATH'] ?? '').split(':').filter((dir) => isAbsolute(dir));
  readable.push(...programRoots(pathOnly.map(realOrSelf), absent, everyHome));
  const throwawayHome =
    home !== undefined && isAbsolute(home) && home !== '/' && ![workdir, ...writable].some((folder) => isWithin(home, folder)) ? home : undefined;
  // Each as it really is: a socket bound through a linked folder is mounted over where it is.
  const bound = sockets.length > 0 ? [...new Set(boundSockets().map(realOrSelf))] : [];
  // Bounded (docs/containment.md says how far it looks): a home too large to look through whole is looked through nearest first.
  const linkedHome = homeLinksInto(homes, [workdir, ...writable]);
  const plan: SandboxPlan = {
    uid: user.uid,
    gid: user.gid,
    workdir,
    writable,
    sockets,
    absent,
    throwawayHome,
    readable,
    state: kept.map(({ source, target }) => ({ source, target })),
    hiddenSockets: bound,
    // Each where it really is (links on the way resolved), and at every other name a bind mount gives it.
    hide: withMountAliases(
      resolveHidden([...own, ...defaultHidden(homes), ...configuredHidden(config, homes), ...keywayHomes([...allHomes, ...homes], boundSocketsOnce(bound))]),
    ),
    privateDirs: runtime !== undefined && isAbsolute(runtime) ? [runtime] : [],
    programs: programFolders(command, env['PATH'], [...absent, ...everyHome]),
    // The homes and PATH's folders both as named and as they resolve (a /home that is a link, a
    // ~/bin linked elsewhere): the judge compares paths as the command's writes land, resolved.
    homes: withRealPaths(homes),
    // PATH's folders, and where git and shells read configuration when XDG_CONFIG_HOME moves it out of the home's hidden names.
    pathFolders,
    relativePathEntries: [...new Set((env['PATH'] ?? '').split(':').filter((dir) => !isAbsolute(dir)))],
    gitConfigured: gitConfiguredPaths(workdir, [workdir, ...writable]),
    homeLinked: linkedHome.links,
  };
  const problem = planProblem(plan, own);
  if (problem !== undefined) throw new ContainRefused(problem);
  // Not $TMPDIR: a variable names any folder (TMPDIR=/etc), and only these two are scratch by what they are.
  const scratch = [...SCRATCH_PLACES];
  for (const path of [workdir, ...writable]) {
    const what = path === workdir ? `the working folder ${path}` : `--allow-write ${path}`;
    const place = folderPlaceProblem(path, what, withRealPaths([...homes, ...allHomes]), withRealPaths(scratch), args.flag('outside-home'));
    if (place !== undefined) throw new ContainRefused(place);
  }
  for (const path of readable) {
    for (const ownPath of own)
      if (isWithin(ownPath, path) || isWithin(path, ownPath)) throw new ContainRefused(`--allow-read ${path} holds or is inside keyway's own ${ownPath}`);
  }
  return { plan, missing, notes };
}

/** The sockets list, or the kernel's when none was read (keyway's doors name the homes of running keyways). */
function boundSocketsOnce(read: readonly string[]): string[] {
  return read.length > 0 ? [...read] : boundSockets();
}

/** Each path, and where it resolves when that differs (links on the way). */
function withRealPaths(paths: readonly string[]): string[] {
  const all = new Set(paths);
  for (const path of paths) {
    try {
      all.add(realpathSync(path));
    } catch {
      // Not there: only its name can match.
    }
  }
  return [...all];
}

/** A plan that would defeat containment: said as contain_refused, exit 2, before anything runs. */
class ContainRefused extends Error {}

/**
 * Hidden paths as bwrap must see them: a link is hidden by hiding what it points to (bwrap mounts
 * through it; the link then leads into the empty folder). A link that leads nowhere is refused by name.
 */
function resolveHidden(paths: readonly string[]): string[] {
  const resolved: string[] = [];
  for (const path of paths) {
    let link = false;
    try {
      link = lstatSync(path).isSymbolicLink();
    } catch {
      // Not there: hidden where it would be, a folder on the way being a link or not.
      resolved.push(path, join(realOrSelf(dirname(path)), basename(path)));
      continue;
    }
    if (!link) {
      // Where it really is: a folder on the way may be a link (~/lnk/kw, ~/lnk leading out of the
      // home), and a mount on the path as named would land under an empty home, out of sight already.
      resolved.push(realOrSelf(path));
      continue;
    }
    try {
      resolved.push(realpathSync(path));
    } catch {
      throw new ContainRefused(
        `${path} is a link to ${readlinkSync(path)}, which does not exist, and keyway hides that path from a contained command: remove the link, or make what it points to`,
      );
    }
  }
  return [...new Set(resolved)];
}

/** The folders the command's programs come from: its PATH's, and its own when named by path (contain/sandbox.ts binds those under a private dir). */
function programFolders(command: readonly string[], path: string | undefined, homes: readonly string[]): string[] {
  const folders = (path ?? '').split(':').filter((dir) => isAbsolute(dir));
  if (command[0] !== undefined && isAbsolute(command[0])) folders.push(dirname(command[0]));
  // Where each really is (bwrap binds a link's target at the link's name), and never a folder that
  // holds a home or is one, nor a hidden folder at a home's top (~/.local, ~/.config: every program's
  // data): a PATH entry `~`, `~/.local` or a link to either shows nothing of them.
  return folders
    .map(realOrSelf)
    .filter((folder) => !homes.some((home) => isWithin(home, folder) || (dirname(folder) === home && basename(folder).startsWith('.'))));
}

function existingPath(path: string, option: string): string {
  try {
    return realpathSync(resolve(path));
  } catch (err) {
    throw usageError(`${option} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (err as Error).message}`);
  }
}

/** The ports the grants' domains name (`host:8443`): each gets a listener of its own under --contain. */
function grantPorts(domains: readonly string[]): number[] {
  const ports: number[] = [];
  for (const text of domains) {
    const pattern = parseDomainPattern(text);
    if (typeof pattern !== 'string' && pattern.port !== undefined) ports.push(pattern.port);
  }
  return ports;
}

function portNumber(text: string): number {
  const port = Number(text);
  if (!/^[0-9]+$/.test(text) || port < 1 || port > 65_535) throw usageError(`--port ${text}: a port number, 1 to 65535`);
  return port;
}

/** --agent names no agent of the config or the store: said so, with the nearest name. */
function noSuchAgent(id: string, known: readonly string[]): Error {
  const near = closestName(id, known);
  const list = known.length === 0 ? 'there are none: `keyway agents add ID`' : `agents: ${known.join(', ')}`;
  return usageError(`no agent "${id}"${near ? `; did you mean ${near}?` : ''} (${list})`);
}

/** The path with every link resolved, or as given where it cannot be (not there, not reachable). */
function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
