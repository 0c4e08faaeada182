import { join } from 'node:path';
import { type Config, type DomainPattern, parseDomainPattern, secretVariables } from '../../config/index.ts';
import { envPlaceholder } from '../../credentials/body-swap/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { patternMatches } from '../../policy/domains.ts';
import { findProfile, type LoadedProfile } from './load.ts';
import { makeState, resolveState, type StatePath } from './state.ts';

// `keyway run [--contain] --profile NAME`: what the profile adds to the run, worked out here so the
// run command only merges it. Every run: the profile's `env`, a placeholder in each `keys` variable
// a grant of the agent covers, keyway's CA in each `ca` variable, its state made where missing, and
// `command` when no CMD is given. Contained only (an uncontained command has the caller's whole
// environment and reaches every file, socket and port already): the state writable (--allow-write),
// `pass_env` kept (--env), `ports` (--port) and `sockets` (--allow-socket).

export interface ProfileRunPlan {
  loaded: LoadedProfile;
  /** CMD when the command line gives none. */
  command: string[];
  /** Lines for stderr before the run (whose file it is, what was made). */
  notes: string[];
  /** Set over the caller's variables; keyway's proxy and CA variables go over these. */
  env: Record<string, string>;
  /** Variables the agent reads its CA from that keyway sets (to its bundle) besides its own. */
  caVariables: string[];
  state: StatePath[];
  /** --contain: --env, --port and --allow-socket values. */
  passEnv: string[];
  ports: number[];
  sockets: string[];
}

/** What a key placeholder needs to know of a grant: never its secret. */
export interface KeyGrant {
  type: string;
  domains: readonly string[];
}

export interface PlanContext {
  config: Config;
  configFile: string | undefined;
  env: NodeJS.ProcessEnv;
  contain: boolean;
}

/**
 * The profile's part of the run, checked; a usage error naming the profile and what is wrong.
 * Nothing is made on disk here: `makeProfileState` does that once the run is otherwise ready.
 */
export function profileRunPlan(name: string, ctx: PlanContext): ProfileRunPlan {
  const loaded = findProfile(ctx.config.home, name);
  const { profile } = loaded;
  const notes: string[] = [];
  if (loaded.source.kind === 'file' && loaded.source.overrides) notes.push(`profile ${name}: from ${loaded.source.path}, in place of the built-in`);
  const home = ctx.env['HOME'];
  if (home === undefined) throw new KeywayError('usage', `profile ${name}: HOME is not set, and its state is in the home folder`);
  const state = resolveState(loaded, { config: ctx.config, configFile: ctx.configFile, home, pathVariable: ctx.env['PATH'] });
  if (ctx.contain) {
    // A secret of keyway's never reaches a contained command, whatever the profile says.
    const secret = secretVariables(ctx.config);
    const refused = profile.pass_env.filter((v) => secret.has(v));
    if (refused.length > 0)
      throw new KeywayError(
        'usage',
        `profile ${name}: pass_env ${refused.join(', ')}: a secret of keyway's (a config env: reference) is never passed to a contained command`,
      );
  }
  const hostPorts = profile.hosts.flatMap((h) => {
    const pattern = parseDomainPattern(h.host);
    return typeof pattern !== 'string' && pattern.port !== undefined && pattern.port !== 443 ? [pattern.port] : [];
  });
  return {
    loaded,
    command: [profile.command],
    notes,
    // A value written `~/…` is a path in the home (CLAUDE_CONFIG_DIR: ~/.claude): the agent needs it absolute.
    env: Object.fromEntries(Object.entries(profile.env).map(([k, v]) => [k, v.startsWith('~/') ? join(home, v.slice(2)) : v])),
    caVariables: [...profile.ca],
    state,
    passEnv: [...profile.pass_env],
    ports: [...new Set([...profile.ports, ...hostPorts])],
    sockets: profile.sockets.map((path) => (path.startsWith('~/') ? join(home, path.slice(2)) : path)),
  };
}

/** Makes the state that is missing; the lines that say so. */
export function makeProfileState(plan: ProfileRunPlan): string[] {
  return makeState(plan.state);
}

/**
 * A placeholder in each key variable whose host a grant of the agent covers with a static key
 * (api_key or bearer). Only then: an agent signed in with its own login (a login_capture grant)
 * must not be handed an API key variable, which it would prefer to its login, and a host no grant
 * covers gets no credential from keyway, so the variable would only make the agent try one.
 */
export function keyPlaceholders(plan: ProfileRunPlan, grants: readonly KeyGrant[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const key of plan.loaded.profile.keys) if (keyCovered(key.host, grants)) vars[key.env] = envPlaceholder(key.env);
  return vars;
}

/** Whether a grant that injects a static key covers `host` (host or host:port). */
export function keyCovered(host: string, grants: readonly KeyGrant[]): boolean {
  const target = parseDomainPattern(host);
  if (typeof target === 'string') return false;
  const port = target.port ?? 443;
  return grants.some(
    (g) =>
      (g.type === 'api_key' || g.type === 'bearer') &&
      g.domains.map(parseDomainPattern).some((p) => typeof p !== 'string' && patternMatches(p as DomainPattern, target.host, port)),
  );
}
