import { parseDomainPattern } from '../../config/index.ts';
import { patternMatches } from '../../policy/domains.ts';
import { BUILTIN_PROFILES } from './builtin/index.ts';
import type { LoadedProfile } from './load.ts';

// Whether a grant the agent may use covers one of a profile's model hosts (role: model). Without
// one, the agent's model calls go without a key and it asks, inside, for a login keyway would not
// see: `keyway doctor --profile` fails its check on it, and `keyway run --profile` warns.

/** What is needed of a grant to know where keyway routes to it: never its secret. */
export interface RoutedGrant {
  id: string;
  type: string;
  domains: readonly string[];
  /** login_capture: its token endpoints' hosts, which keyway intercepts for it too. */
  captureHosts?: readonly string[] | undefined;
}

/** The grants keyway routes host:port to: their domains, and a login capture's token endpoints. */
export function grantsCovering<G extends RoutedGrant>(grants: readonly G[], host: string, port: number): G[] {
  return grants.filter((g) =>
    [...g.domains, ...(g.captureHosts ?? [])].some((d) => {
      const p = parseDomainPattern(d);
      return typeof p !== 'string' && patternMatches(p, host, port);
    }),
  );
}

/** host[:port] as host and port (443 unless said). */
export function hostPort(text: string): { host: string; port: number } {
  const p = parseDomainPattern(text);
  return typeof p === 'string' ? { host: text, port: 443 } : { host: p.host, port: p.port ?? 443 };
}

export type ModelGrantCover =
  | { kind: 'no-model-host' }
  | { kind: 'covered'; by: ReadonlyArray<{ host: string; grants: readonly RoutedGrant[] }> }
  | { kind: 'uncovered'; hosts: readonly string[]; fix: string };

/**
 * Which of the profile's model hosts a grant of `grants` (those the agent may use) covers. The fix,
 * when none does: `keyway connect NAME` for a built-in agent (with `--agent ID` when one was named),
 * else a grant of the user's own.
 */
export function modelGrantCover(loaded: LoadedProfile, grants: readonly RoutedGrant[], agent: string | undefined): ModelGrantCover {
  const models = loaded.profile.hosts.filter((h) => h.role === 'model').map((h) => h.host);
  if (models.length === 0) return { kind: 'no-model-host' };
  const by = models.flatMap((text) => {
    const { host, port } = hostPort(text);
    const found = grantsCovering(grants, host, port);
    return found.length === 0 ? [] : [{ host: text, grants: found }];
  });
  if (by.length > 0) return { kind: 'covered', by };
  const names = models.join(' or ');
  // A file that takes a built-in's place is still that agent: connect knows it.
  const fix =
    BUILTIN_PROFILES[loaded.name] !== undefined
      ? `keyway connect ${loaded.name}${agent === undefined ? '' : ` --agent ${agent}`}`
      : `add a grant for ${names} (keyway grants add)`;
  return { kind: 'uncovered', hosts: models, fix };
}

/** `keyway run --profile`'s one line on stderr when no grant the agent may use covers a model host; undefined when one does. */
export function noModelGrantWarning(loaded: LoadedProfile, grants: readonly RoutedGrant[], agent: string | undefined): string | undefined {
  const cover = modelGrantCover(loaded, grants, agent);
  if (cover.kind !== 'uncovered') return undefined;
  const who = agent === undefined ? '' : ` agent "${agent}" may use`;
  return `warning: no grant${who} covers ${cover.hosts.join(' or ')}, so ${loaded.name}'s model calls would go without a key (it may ask you to log in inside): ${cover.fix}`;
}
