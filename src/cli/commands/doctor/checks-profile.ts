// `keyway doctor --profile NAME`: whether that profile can run here, one line per check: it parses;
// its command is on PATH; its state can be made or written; a grant of the agent covers its model
// host; the CA variables it reads point at files holding keyway's CA; and each host it calls gets
// through keyway's policy (intercepted by a grant, or tunnelled), not refused by proxy.unmatched deny.

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { BUILTIN_PROFILES, findProfile, type LoadedProfile, profileRunPlan, type ProfileRunPlan } from '../../../agents/profiles/index.ts';
import { parseDomainPattern } from '../../../config/index.ts';
import { patternMatches } from '../../../policy/domains.ts';
import { clientEnvironment, grantsForAgent, type PlaceholderGrant } from '../../client-env.ts';
import { findOnPath } from '../../user-node.ts';
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
  results.push(await checkCommand(ctx, loaded));
  let plan: ProfileRunPlan | undefined;
  try {
    plan = profileRunPlan(name, { config: ctx.config, configFile: ctx.args.string('config'), env: ctx.io.env, contain: true });
    results.push(checkState(plan));
  } catch (err) {
    results.push({ check: 'its state', status: 'fail', detail: (err as Error).message });
  }
  const agent = ctx.args.string('agent');
  const view = await grantsForAgent(ctx.config, agent, ctx.io.env, () => undefined);
  const all = agent === undefined ? view.grants : (await grantsForAgent(ctx.config, undefined, ctx.io.env, () => undefined)).grants;
  const as = agent === undefined ? 'any agent' : `agent "${agent}"`;
  results.push(checkModelHost(loaded, view.grants, as));
  results.push(checkCaVariables(ctx, loaded));
  for (const host of loaded.profile.hosts) results.push(checkHost(ctx, host, { usable: view.grants, all }, as));
  return results;
}

async function checkCommand(ctx: Context, loaded: LoadedProfile): Promise<CheckResult> {
  const { command } = loaded.profile;
  const check = `its command (${command})`;
  const found = command.startsWith('/') ? (isExecutable(command) ? command : undefined) : await findOnPath(command, ctx.io.env['PATH'] ?? '');
  if (found !== undefined) return { check, status: 'ok', detail: found };
  return {
    check,
    status: 'fail',
    detail: `${command} is not ${command.startsWith('/') ? 'an executable file' : 'on PATH'}`,
    fix: `install it, or run another command: keyway run --profile ${loaded.name} -- CMD`,
  };
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

function covering(grants: readonly PlaceholderGrant[], host: string, port: number): PlaceholderGrant[] {
  return grants.filter((g) =>
    g.domains.some((d) => {
      const p = parseDomainPattern(d);
      return typeof p !== 'string' && patternMatches(p, host, port);
    }),
  );
}

function hostPort(text: string): { host: string; port: number } {
  const p = parseDomainPattern(text);
  return typeof p === 'string' ? { host: text, port: 443 } : { host: p.host, port: p.port ?? 443 };
}

function checkModelHost(loaded: LoadedProfile, grants: readonly PlaceholderGrant[], as: string): CheckResult {
  const models = loaded.profile.hosts.filter((h) => h.role === 'model');
  const check = 'a grant for its model';
  if (models.length === 0) return { check, status: 'skip', detail: 'the profile names no model host (role: model)' };
  const missing = models.filter((h) => {
    const { host, port } = hostPort(h.host);
    return covering(grants, host, port).length === 0;
  });
  if (missing.length === 0) {
    const ids = models.flatMap((h) => covering(grants, hostPort(h.host).host, hostPort(h.host).port).map((g) => `${g.id} (${g.type})`));
    return { check, status: 'ok', detail: `${models.map((h) => h.host).join(', ')}: ${[...new Set(ids)].join(', ')}` };
  }
  const fix =
    BUILTIN_PROFILES[loaded.name] !== undefined
      ? `keyway connect ${loaded.name}`
      : `add a grant for ${missing.map((h) => h.host).join(', ')} (keyway grants add)`;
  return { check, status: 'fail', detail: `no grant ${as} may use covers ${missing.map((h) => h.host).join(', ')}: the agent's calls go without a key`, fix };
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

function checkHost(
  ctx: Context,
  entry: LoadedProfile['profile']['hosts'][number],
  grants: { usable: readonly PlaceholderGrant[]; all: readonly PlaceholderGrant[] },
  as: string,
): CheckResult {
  const { host, port } = hostPort(entry.host);
  const check = `${entry.host} (${entry.role})`;
  const usable = covering(grants.usable, host, port);
  if (usable.length > 0) return { check, status: 'ok', detail: `intercepted with grant ${usable.map((g) => g.id).join(', ')}` };
  const proxy = ctx.config.proxy;
  // A grant the agent may not use covers it: refused, never tunnelled (policy/access.ts).
  const others = covering(grants.all, host, port);
  if (others.length > 0) {
    return {
      check,
      status: 'fail',
      detail: `refused: ${as} may not use grant ${others.map((g) => g.id).join(', ')}, which covers it`,
      fix: `add the grant to that agent`,
    };
  }
  if (proxy.unmatched !== 'deny') return { check, status: 'ok', detail: 'no grant covers it: tunnelled untouched (proxy.unmatched: tunnel)' };
  if (proxy.allow_tunnel.some((p) => patternMatches(p, host, port)))
    return { check, status: 'ok', detail: 'no grant covers it: tunnelled untouched (proxy.allow_tunnel)' };
  return {
    check,
    status: entry.role === 'other' ? 'warn' : 'fail',
    detail: `refused: no grant covers it and proxy.unmatched is deny (${entry.why})`,
    fix:
      entry.role === 'model' || entry.role === 'login'
        ? `keyway connect, or a grant covering ${entry.host}`
        : `add ${entry.host} to proxy.allow_tunnel if the agent should reach it`,
  };
}
