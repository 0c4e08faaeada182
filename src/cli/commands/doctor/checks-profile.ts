// `keyway doctor --profile NAME`: whether that profile can run here, one line per check: it parses;
// its command is on PATH, and the uid a contained run gives it can reach it; its state can be made or written; a grant of the agent covers its model
// host; the CA variables it reads point at files holding keyway's CA; and each host it calls gets
// through keyway's policy (intercepted by a grant, or tunnelled), not refused by proxy.unmatched deny.

import { accessSync, constants, existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import {
  findProfile,
  grantsCovering,
  hostPort,
  type LoadedProfile,
  modelGrantCover,
  profileRunPlan,
  type ProfileRunPlan,
} from '../../../profiles/run/index.ts';
import { commandUser } from '../../../contain/command-user.ts';
import { containedReacher, programReach, unreachableFix, unreachableReason } from '../../../contain/program-reach.ts';
import { patternMatches } from '../../../policy/domains.ts';
import { clientEnvironment, grantsForAgent, type PlaceholderGrant } from '../../client-env.ts';
import { findOnPath } from '../../user-node.ts';
import { waitingLoginIds } from './checks-logins.ts';
import type { CheckResult, Context } from './context.ts';

export async function runProfileChecks(ctx: Context, name: string): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let loaded: LoadedProfile;
  try {
    loaded = findProfile(ctx.config.home, name);
  } catch (err) {
    return [{ check: `profile ${name}`, status: 'fail', detail: (err as Error).message }];
  }
  const from = loaded.source.kind === 'builtin' ? 'built in' : `${loaded.source.path}${loaded.source.overrides ? ', in place of the built-in' : ''}`;
  results.push({ check: `profile ${name}`, status: 'ok', detail: `parses (${from})` });
  let plan: ProfileRunPlan | undefined;
  let planError: Error | undefined;
  try {
    plan = profileRunPlan(name, { config: ctx.config, configFile: ctx.args.string('config'), env: ctx.io.env, contain: true });
  } catch (err) {
    planError = err as Error;
  }
  results.push(await checkCommand(ctx, loaded, plan));
  results.push(plan === undefined ? { check: 'its state', status: 'fail', detail: planError?.message ?? 'unknown' } : checkState(plan));
  const agent = ctx.args.string('agent');
  const view = await grantsForAgent(ctx.config, agent, ctx.io.env, () => undefined);
  const all = agent === undefined ? view.grants : (await grantsForAgent(ctx.config, undefined, ctx.io.env, () => undefined)).grants;
  const as = agent === undefined ? 'any agent' : `agent "${agent}"`;
  results.push(checkModelHost(loaded, view.grants, as, agent, await waitingLoginIds(ctx)));
  results.push(checkCaVariables(ctx, loaded));
  for (const host of loaded.profile.hosts) results.push(checkHost(ctx, host, { usable: view.grants, all }, as));
  return results;
}

async function checkCommand(ctx: Context, loaded: LoadedProfile, plan: ProfileRunPlan | undefined): Promise<CheckResult> {
  const { command } = loaded.profile;
  const check = `its command (${command})`;
  const found = command.startsWith('/') ? (isExecutable(command) ? command : undefined) : await findOnPath(command, ctx.io.env['PATH'] ?? '');
  if (found !== undefined) return checkCommandReach(ctx, check, command, found, plan);
  return {
    check,
    status: 'fail',
    detail: `${command} is not ${command.startsWith('/') ? 'an executable file' : 'on PATH'}`,
    fix: `install it, or run another command: keyway run --profile ${loaded.name} -- CMD`,
  };
}

/**
 * Whether the uid a contained run gives the command (as root: not root's) can run it: contain
 * refuses a program it cannot reach (contain/program-reach.ts), here judged from the working folder
 * and the profile's state as a contained run would have them.
 */
async function checkCommandReach(ctx: Context, check: string, command: string, found: string, plan: ProfileRunPlan | undefined): Promise<CheckResult> {
  const user = commandUser(ctx.io.env);
  const folders = { workdir: realpathSync(process.cwd()), writable: plan?.state.map((s) => s.path) ?? [], sockets: plan?.sockets ?? [] };
  const reach = programReach(command, ctx.io.env['PATH'], folders.workdir, await containedReacher(user, folders));
  const asRoot = process.getuid?.() === 0;
  if (reach.kind === 'unreachable')
    return { check, status: 'fail', detail: unreachableReason(command, reach, user.uid), fix: unreachableFix(user.uid, asRoot) };
  return { check, status: 'ok', detail: asRoot ? `${found}, which uid ${user.uid} (the contained command's) can run` : found };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function checkState(plan: ProfileRunPlan): CheckResult {
  const check = 'its state';
  if (plan.state.length === 0) return { check, status: 'ok', detail: 'none' };
  const said: string[] = [];
  for (const s of plan.state) {
    const where = s.missing === undefined ? s.path : dirname(s.path);
    try {
      accessSync(where, constants.W_OK);
    } catch {
      return {
        check,
        status: 'fail',
        detail: `${s.missing === undefined ? s.given : `${s.given}'s folder ${where}`} is not writable by you`,
        fix: `make ${where} yours`,
      };
    }
    said.push(`${s.given} ${s.missing === undefined ? 'writable' : 'will be made'}`);
  }
  return { check, status: 'ok', detail: said.join(', ') };
}

/**
 * Ok when a grant the agent may use covers one of its model hosts (an agent with an API key or a
 * login uses one of them); failed when each that does is a login grant holding no login (`waiting`:
 * id to its status line), whose placeholders nothing would resolve.
 */
function checkModelHost(
  loaded: LoadedProfile,
  grants: readonly PlaceholderGrant[],
  as: string,
  agent: string | undefined,
  waiting: ReadonlyMap<string, string>,
): CheckResult {
  const check = 'a grant for its model';
  const cover = modelGrantCover(loaded, grants, agent);
  if (cover.kind === 'no-model-host') return { check, status: 'skip', detail: 'the profile names no model host (role: model)' };
  const covering = cover.kind === 'covered' ? [...new Set(cover.by.flatMap((c) => c.grants.map((g) => g.id)))] : [];
  if (covering.length > 0 && covering.every((id) => waiting.has(id)))
    return {
      check,
      status: 'fail',
      detail: `${covering.map((id) => `grant ${id}`).join(', ')} covers it but holds no login yet: the agent's calls would go without one`,
      fix: waiting.get(covering[0]!)!.replace(/^waiting for login: (run )?/, ''),
    };
  if (cover.kind === 'covered')
    return { check, status: 'ok', detail: cover.by.map((c) => `${c.host}: ${c.grants.map((g) => `${g.id} (${g.type})`).join(', ')}`).join('; ') };
  return {
    check,
    status: 'fail',
    detail: `no grant ${as} may use covers ${cover.hosts.join(' or ')}: the agent's calls would go without a key`,
    fix: cover.fix,
  };
}

function checkCaVariables(ctx: Context, loaded: LoadedProfile): CheckResult {
  const check = 'the CA variables it reads';
  if (loaded.profile.ca.length === 0) return { check, status: 'skip', detail: 'the profile names none' };
  const caFile = join(ctx.config.home, 'certs', 'ca.pem');
  if (!existsSync(caFile)) return { check, status: 'fail', detail: `no CA yet (${caFile})`, fix: 'keyway init' };
  const ca = readFileSync(caFile, 'utf8').trim();
  const run = clientEnvironment(ctx.config);
  const said: string[] = [];
  for (const name of loaded.profile.ca) {
    // What `keyway run --profile` sets: keyway's own value, else the bundle (as SSL_CERT_FILE).
    const file = run[name] ?? run['SSL_CERT_FILE']!;
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // said below
    }
    if (!text.includes(ca))
      return { check, status: 'fail', detail: `${name}=${file}, which does not hold keyway's CA`, fix: 'keyway init (remakes the bundle)' };
    said.push(`${name}=${relative(ctx.config.home, file)}`);
  }
  return { check, status: 'ok', detail: `keyway run sets ${said.join(', ')} (in keyway's home), each holding its CA` };
}

/**
 * What keyway does with a connection to one of the profile's hosts, as policy/access.ts and
 * proxy/destination.ts decide it. A refusal fails only for a host the agent needs whatever it signs
 * in with (other); a model or login host may be one the agent does not use (an API key, or a
 * login), so it warns; an `off` host refused is as it should be, and reached is a warning.
 */
function checkHost(
  ctx: Context,
  entry: LoadedProfile['profile']['hosts'][number],
  grants: { usable: readonly PlaceholderGrant[]; all: readonly PlaceholderGrant[] },
  as: string,
): CheckResult {
  const { host, port } = hostPort(entry.host);
  const check = `${entry.host} (${entry.role})`;
  const off = entry.role === 'off';
  const refused = (why: string, fix: string): CheckResult =>
    off
      ? { check, status: 'ok', detail: `refused, as it should be (${entry.why}): ${why}` }
      : { check, status: entry.role === 'other' ? 'fail' : 'warn', detail: `refused: ${why} (${entry.why})`, fix };
  // An `off` host keyway lets through: whether the agent still calls it depends on the agent's own
  // settings (codex's config.toml, an environment variable), which doctor does not read. It says it
  // cannot tell (issue 86: the warning read as if the switch had not been made) and how keyway
  // itself can refuse the host, the one state it can check.
  const reached = (detail: string): CheckResult =>
    off
      ? {
          check,
          status: 'warn',
          detail: `${detail}; whether the agent still calls it, keyway cannot tell (it does not read the agent's own settings): ${entry.why}`,
          fix: `turn it off as that says; to have keyway refuse it whatever the agent's settings, set proxy.unmatched: deny (this check is then ok)`,
        }
      : { check, status: 'ok', detail };
  const usable = grantsCovering(grants.usable, host, port);
  if (usable.length > 0) return reached(`intercepted with grant ${usable.map((g) => g.id).join(', ')}`);
  // A grant the agent may not use covers it: refused, never tunnelled.
  const others = grantsCovering(grants.all, host, port);
  if (others.length > 0) return refused(`${as} may not use grant ${others.map((g) => g.id).join(', ')}, which covers it`, 'add the grant to that agent');
  const proxy = ctx.config.proxy;
  if (proxy.unmatched !== 'deny') return reached('no grant covers it: tunnelled untouched (proxy.unmatched: tunnel)');
  if (proxy.allow_tunnel.some((p) => patternMatches(p, host, port))) return reached('no grant covers it: tunnelled untouched (proxy.allow_tunnel)');
  return refused(
    'no grant covers it and proxy.unmatched is deny',
    entry.role === 'other' ? `add ${entry.host} to proxy.allow_tunnel` : `keyway connect, or a grant covering ${entry.host}, if the agent signs in that way`,
  );
}
