import type { DomainPattern } from '../config/index.ts';
import { ProxyError } from '../errors/index.ts';
import { patternMatches } from './domains.ts';

// Policy's own small input types, so policy never imports credentials: a grant (credentials/grant.ts)
// and an agent (credentials/agents.ts) are passed in as what routing needs of them.

/** What routing needs of a grant: its id and the domains it covers. */
export interface RoutedGrant {
  readonly id: string;
  readonly domains: readonly DomainPattern[];
}

/** What routing needs of an agent: its id and the grants it may use (undefined: every grant). */
export interface GrantScope {
  readonly id: string;
  readonly grants: ReadonlySet<string> | undefined;
}

/** What to do with a connection to host:port, before any request inside it is seen. */
export type RouteDecision<G extends RoutedGrant = RoutedGrant> =
  | { kind: 'intercept'; candidates: readonly G[] }
  | { kind: 'unmatched' }
  | { kind: 'refuse'; error: ProxyError };

/**
 * Finds the grants covering a host. Built once per grant-table change; lookups are a Map get plus
 * a scan of the wildcard patterns only.
 */
export class GrantRouter<G extends RoutedGrant = RoutedGrant> {
  readonly #exact = new Map<string, G[]>();
  readonly #wildcards: G[] = [];

  constructor(grants: Iterable<G>) {
    for (const grant of grants) {
      for (const pattern of grant.domains) {
        if (pattern.wildcard) {
          if (!this.#wildcards.includes(grant)) this.#wildcards.push(grant);
        } else {
          const list = this.#exact.get(pattern.host) ?? [];
          if (!list.includes(grant)) list.push(grant);
          this.#exact.set(pattern.host, list);
        }
      }
    }
  }

  /** Every grant routed, once each (listings and hints; not the request path). */
  list(): G[] {
    return [...new Set([...[...this.#exact.values()].flat(), ...this.#wildcards])];
  }

  covering(host: string, port: number): G[] {
    const found: G[] = [];
    for (const grant of this.#exact.get(host) ?? []) {
      if (grant.domains.some((p) => patternMatches(p, host, port))) found.push(grant);
    }
    for (const grant of this.#wildcards) {
      if (!found.includes(grant) && grant.domains.some((p) => patternMatches(p, host, port))) found.push(grant);
    }
    return found;
  }

  decide(agent: GrantScope, host: string, port: number): RouteDecision<G> {
    const covering = this.covering(host, port);
    if (covering.length === 0) return { kind: 'unmatched' };
    const usable = agent.grants ? covering.filter((g) => agent.grants!.has(g.id)) : covering;
    if (usable.length === 0) {
      // Refused rather than tunnelled: a host that a grant covers is one the user chose to guard.
      return {
        kind: 'refuse',
        error: new ProxyError('host_not_allowed', `agent "${agent.id}" may not use the grant covering ${host} (${covering.map((g) => g.id).join(', ')})`, {
          // The grant the agent was refused (the first, when several cover the host: the message lists them all).
          grant: covering[0]!.id,
          hint: `add the grant to agent "${agent.id}"`,
        }),
      };
    }
    return { kind: 'intercept', candidates: usable };
  }
}

/**
 * Picks one grant among the candidates the agent may use: the only one, or the one named by
 * `X-Keyway-Grant`. Throws `grant_ambiguous` listing the choices otherwise.
 */
export function chooseGrant<G extends RoutedGrant>(candidates: readonly G[], requested: string | undefined): G {
  if (requested !== undefined && requested !== '') {
    const chosen = candidates.find((g) => g.id === requested);
    if (!chosen) {
      throw new ProxyError('host_not_allowed', `grant "${requested}" does not cover this host or is not available to this agent`, {
        grant: requested,
        hint: `grants available here: ${candidates.map((g) => g.id).join(', ')}`,
      });
    }
    return chosen;
  }
  if (candidates.length === 1) return candidates[0]!;
  throw new ProxyError('grant_ambiguous', `${candidates.length} grants cover this host and none was chosen`, {
    hint: `send the header X-Keyway-Grant with one of: ${candidates.map((g) => g.id).join(', ')}`,
  });
}
