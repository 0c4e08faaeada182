import { agentTerms, ANONYMOUS_AGENT } from '../../credentials/agents.ts';
import { capturedSince } from '../../profiles/connect/captured.ts';
import { saveConnectGrant, waitingForLogin } from '../../profiles/connect/connect-grant.ts';
import type { GrantResult } from '../../operations/grants.ts';
import { capturedLogin, loginGrantInput } from '../../profiles/connect/login-grant.ts';
import { dropLoginFolder, type KeptLogin, keepLoginFile, loginEnvironment, makeLoginFolder, runsInOwnFolder } from '../../profiles/connect/login-run.ts';
import type { AgentTarget } from '../../profiles/connect/targets.ts';
import { BUILTIN_PROFILES } from '../../profiles/run/builtin/index.ts';
import { loginCommand } from '../../credentials/grant-display.ts';
import type { Services } from '../../open-home.ts';
import { findRunningProxy } from '../../running-proxy.ts';
import type { Args } from '../args.ts';
import { audited } from '../audit-change.ts';
import { shellQuote } from '../client-env.ts';
import { waitUntilServed } from '../grant-served.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { run } from './env.ts';

// `keyway connect AGENT --login`: a login_capture grant, then the agent's own login command under
// `keyway run`, so that its token answer passes keyway. What a login cut short leaves (issue 86),
// chosen so that it is the same however it ends (Ctrl-C, the agent failing offline, this process
// killed): the grant stays, holding no login, and `grants list` and `doctor` say it waits for one;
// `keyway connect AGENT --login` again fills it (no --replace: it holds nothing to lose), and
// `keyway grants rm` removes it. Rolling the grant back instead would work only where this process
// lives to do it, and a grant made with --replace had dropped its old login already. The agent's
// files are another matter: an agent whose login writes more than its login file (Claude Code)
// logs in with its state in a private folder (profiles/connect/login-run.ts), so a login cut short
// changes nothing in the home, and a finished one only the login file.

/** The command the docs give for running the agent: contained, with its profile (docs/agents/). */
export function runLine(target: AgentTarget, agent: string | undefined): string {
  return `keyway run --contain --profile ${target.name}${agent === undefined ? '' : ` --agent ${agent}`} -- ${target.program}`;
}

/** The keyway agent that logs in: the one --agent names, else the local agent where no agents are configured. */
export function loginAgent(services: Services, named: string | undefined): { named: string | undefined; id: string } {
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

/** --replace as given, or a grant of this agent's that waits for its login: filled again, nothing lost. */
async function replacing(services: Services, grantId: string, target: AgentTarget, replace: boolean): Promise<boolean> {
  return replace || (await waitingForLogin(services, grantId, target.name));
}

/**
 * The agent's login_capture grant saved, audited as made, or as replaced (with --replace, or when it
 * waits for its login), and its warnings said: `keyway connect AGENT --login` and `--import` alike.
 */
export async function saveLoginGrant(
  services: Services,
  io: CommandIO,
  target: AgentTarget,
  grantId: string,
  agent: { named: string | undefined },
  replace: boolean,
): Promise<GrantResult['grant']> {
  const input = loginGrantInput(target, grantId, agent.named);
  const again = await replacing(services, grantId, target, replace);
  const { grant, warnings } = await audited(
    services,
    io,
    { action: again ? 'grants.replace' : 'grants.create', grant: grantId, agent: agent.named, changed: ['type', 'domains', 'capture'] },
    () => saveConnectGrant(services, input, { replace: again }),
  );
  for (const line of warnings) io.err(line);
  return grant;
}

export async function connectLogin(services: Services, args: Args, io: CommandIO, target: AgentTarget, grantId: string, replace: boolean): Promise<number> {
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
  const grant = await saveLoginGrant(services, io, target, grantId, agent, replace);
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
  const command = login.command.join(' ');
  const fillAgain = `${loginCommand({ id: grant.id, labels: { 'coding-agent': target.name }, agent: agent.named })}${homeArgs(args)
    .map((w) => ` ${shellWord(w)}`)
    .join('')}`;
  // What is left when the login does not finish: said the same way whatever cut it short.
  const waiting = () =>
    io.err(
      `keyway: grant ${grant.id} stays, holding no login (keyway grants list says it waits for one): to finish, ${fillAgain}; to undo, keyway grants rm ${grant.id}`,
    );
  const interrupts = noteInterrupts();
  try {
    // The login starts only once the running keyway watches its endpoint: before, its answer would pass unseen.
    const late = await waitUntilServed(services.paths.home, grant.id, io.env);
    if (late.length > 0) {
      io.err(
        `keyway: keyway pid ${late.join(', ')} did not take up grant ${grant.id} within 5 s, so the login was not started (its tokens would pass unwatched): check \`keyway status\``,
      );
      waiting();
      return 1;
    }
    if (interrupts.signal !== undefined) {
      io.err(`keyway: ${interrupts.signal} before ${command} started: it was not run`);
      waiting();
      return 130;
    }
    io.err(`keyway: grant ${grant.id} watches ${endpoints}; running ${command} under keyway run${login.hint ? `: ${login.hint}` : ''}`);
    const ownFolder = runsInOwnFolder(login) ? await makeLoginFolder() : undefined;
    const started = new Date();
    let status: number;
    let captured: string[];
    let kept: KeptLogin | undefined;
    try {
      status = await run.run(runArgs, { ...io, env: { ...io.env, ...loginEnvironment(builtinProfileEnv(target.name), login, ownFolder) } });
      captured = await capturedSince(services.store, grant.id, agent.id, started);
      if (ownFolder !== undefined && captured.length > 0) kept = await keepLoginFile(ownFolder, login.file, io.env);
    } finally {
      if (ownFolder !== undefined) await dropLoginFolder(ownFolder);
    }
    // A terminal's Ctrl-C at the agent's prompt reaches the agent alone (its prompt reads the key
    // itself, no signal is sent), which exits 130 for it.
    const ended =
      interrupts.signal !== undefined
        ? `was stopped (${interrupts.signal}; it exited with ${status})`
        : status === 130
          ? 'was interrupted (it exited with 130)'
          : `exited with ${status}`;
    const homeAsItWas = ownFolder === undefined ? '' : `; nothing it wrote was kept, your ${login.credentialFile} and the rest of your home are as they were`;
    if (captured.length === 0) {
      if (status !== 0 || interrupts.signal !== undefined)
        io.err(`keyway: ${command} ${ended} before its login passed keyway: nothing was captured${homeAsItWas}`);
      else
        io.err(
          `keyway: ${command} finished, but no token answer passed keyway at ${endpoints}: the agent may already be logged in (log it out first, or take that login over with keyway connect ${target.name} --import), or it reached its server some other way${homeAsItWas}`,
        );
      waiting();
      return status !== 0 ? status : interrupts.signal !== undefined ? 130 : 1;
    }
    if (kept !== undefined && !kept.kept) {
      io.err(
        `keyway: keyway holds the login (${captured.join(', ')}), but ${kept.why}, so ${target.program} has no placeholders to use it with: log in again with keyway connect ${target.name} --login --replace`,
      );
      return 1;
    }
    if (status !== 0) io.err(`keyway: warning: ${command} ${ended} after its login passed keyway`);
    if (kept?.kept && kept.aside !== undefined) io.err(`keyway: ${kept.path} was not JSON: it is kept beside it, as ${kept.aside}`);
    if (args.json) printJson(io, { grant, captured });
    else {
      io.out(`connected ${target.title}'s login: keyway holds ${captured.join(', ')}; ${login.credentialFile} holds placeholders`);
      io.out(`run it with \`${runLine(target, agent.named)}\`: its refreshes go through keyway`);
    }
    return 0;
  } finally {
    interrupts.stop();
  }
}

/**
 * SIGINT and SIGTERM noted from the grant's save to the end, rather than ending this process: the
 * login command gets them too (a terminal's Ctrl-C reaches both; `keyway run` passes them on), and
 * what the cut-short login left is said once it has ended.
 */
function noteInterrupts(): { readonly signal: NodeJS.Signals | undefined; stop(): void } {
  let signal: NodeJS.Signals | undefined;
  const note = (received: NodeJS.Signals) => {
    signal ??= received;
  };
  process.on('SIGINT', note);
  process.on('SIGTERM', note);
  return {
    get signal() {
      return signal;
    },
    stop() {
      process.off('SIGINT', note);
      process.off('SIGTERM', note);
    },
  };
}

/** A word as a shell reads it back: bare when it is plain, else quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : shellQuote(word);
}

/** --home and --config as given, so that `keyway run` serves the same home. */
function homeArgs(args: Args): string[] {
  return [...['home', 'config'].flatMap((name) => (args.string(name) === undefined ? [] : [`--${name}`, args.string(name)!]))];
}

/** The `env` of the agent's built-in profile: the switches (telemetry and the rest) its login runs with too. */
function builtinProfileEnv(agent: string): Readonly<Record<string, string>> {
  return (BUILTIN_PROFILES[agent] as { env?: Record<string, string> } | undefined)?.env ?? {};
}
