import { AGENT_PREFIX, type StoredAgent } from './agent-record.ts';
import { GRANT_PREFIX, type StoredGrant } from './grant-record.ts';
import type { CredentialStore } from './store/credential-store.ts';

// What `keyway env` and `keyway run` need of the store: which grants and agents there are, never a
// secret. Read from a store opened here, or answered by the running keyway's contain door (which
// has the store open already), so a run need not load and decrypt it.

export interface StoredListing {
  /** Every grant in the store but revoked ones. */
  grants: Array<{ id: string; type: string; domains: string[]; provider?: string | undefined; body: boolean; captureHosts?: string[] | undefined }>;
  /** Every agent in the store, with the grants it may use (undefined: every grant). */
  agents: Array<{ id: string; grants?: string[] | undefined }>;
}

/** A login_capture grant's watched hosts (config or store record alike: `capture.endpoints[].host`). */
export function captureHostsOf(grant: { type: string; capture?: unknown }): string[] | undefined {
  if (grant.type !== 'login_capture') return undefined;
  const endpoints = (grant.capture as { endpoints?: Array<{ host?: unknown }> } | undefined)?.endpoints ?? [];
  return endpoints.flatMap((e) => (typeof e.host === 'string' ? [e.host] : []));
}

export function storedListing(store: Pick<CredentialStore, 'entries'>): StoredListing {
  const grants: StoredListing['grants'] = [];
  for (const [, g] of store.entries<StoredGrant>(GRANT_PREFIX)) {
    if (g.status === 'revoked') continue;
    grants.push({
      id: g.id,
      type: g.type,
      domains: [...g.domains],
      provider: g.provider,
      body: g.inject?.body !== undefined && g.inject.body !== false,
      captureHosts: captureHostsOf(g as { type: string; capture?: unknown }),
    });
  }
  const agents: StoredListing['agents'] = [];
  for (const [, a] of store.entries<StoredAgent>(AGENT_PREFIX)) {
    if (typeof a.id === 'string') agents.push({ id: a.id, grants: a.grants === undefined ? undefined : [...a.grants] });
  }
  return { grants, agents };
}
