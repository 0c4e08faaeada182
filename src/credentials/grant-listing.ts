import type { Config } from '../config/index.ts';
import type { RecordSource } from './grants.ts';
import { injectorFor } from './injectors/index.ts';
import { GRANT_PREFIX, usageRecordId, type GrantStatus, type GrantUsage, type StoredGrant } from './grant-record.ts';
import type { SecretMaterial } from './material.ts';
import { LEASE_PREFIX, type LeaseRecord } from './lease-record.ts';
import { oauthStateId, type OAuthState } from './oauth-state.ts';

/** One grant as listings show it: never a secret value, only whether one is set and when it expires. */
export interface GrantListing {
  id: string;
  type: string;
  domains: string[];
  status: string;
  source: 'config' | 'store';
  inject: string;
  provider: string | null;
  secret: 'set' | 'missing';
  scopes: string[] | null;
  token_expires_at: string | null;
  last_refreshed_at: string | null;
  last_used_at: string | null;
  allow_http: boolean;
  /** The second clock: each agent's lease on this grant (agents with a lease_ttl only). */
  leases: Array<{ agent: string; state: 'active' | 'expired' | 'revoked'; expires_at: string }>;
}

/** `services` is what openServices returns (services.ts), or anything with a config and the store's reads. */
export function listGrants(services: { config: Config; store: RecordSource }): GrantListing[] {
  const { config, store } = services;
  const lastUsed = (id: string) => store.get<GrantUsage>(usageRecordId(id))?.last_used_at ?? null;
  const now = Date.now();
  const leasesOf = (id: string) =>
    store
      .entries<LeaseRecord>(LEASE_PREFIX)
      .filter(([, l]) => l.grant === id)
      .map(([, l]) => ({
        agent: l.agent,
        state: l.revoked_at !== undefined ? ('revoked' as const) : Date.parse(l.expires_at) > now ? ('active' as const) : ('expired' as const),
        expires_at: l.expires_at,
      }));
  const describe = (type: StoredGrant['type'], inject: StoredGrant['inject']) => {
    try {
      return injectorFor(type, inject).describe();
    } catch (err) {
      return `invalid: ${(err as Error).message}`;
    }
  };
  // The token clock: the live state a refresh left, else what the user stored. Never a token value.
  const tokenFacts = (id: string, base: GrantStatus, material: SecretMaterial | undefined) => {
    const live = store.get<OAuthState>(oauthStateId(id));
    const m = material && typeof material === 'object' && !('username' in material) ? material : undefined;
    const expiresAt = live ? live.expiresAt : m?.expiresAt;
    return {
      status: base !== 'active' ? base : (live?.status ?? base),
      scopes: live?.scopes ?? m?.scopes ?? null,
      token_expires_at: typeof expiresAt === 'number' ? new Date(expiresAt).toISOString() : null,
      last_refreshed_at: live?.refreshedAt ?? null,
    };
  };
  const rows: GrantListing[] = Object.entries(config.grants).map(([id, g]) => ({
    id,
    type: g.type,
    domains: g.domains.map((d) => d.text),
    source: 'config',
    inject: describe(g.type, g.inject),
    provider: g.provider ?? null,
    secret: g.secret ? 'set' : 'missing',
    ...tokenFacts(id, 'active', undefined),
    last_used_at: lastUsed(id),
    allow_http: g.allow_http,
    leases: leasesOf(id),
  }));
  for (const [, g] of store.entries<StoredGrant>(GRANT_PREFIX)) {
    if (config.grants[g.id]) continue;
    rows.push({
      id: g.id,
      type: g.type,
      domains: g.domains,
      source: 'store',
      inject: describe(g.type, g.inject),
      provider: g.provider ?? null,
      secret: g.secret === undefined ? 'missing' : 'set',
      ...tokenFacts(g.id, g.status, g.secret),
      last_used_at: lastUsed(g.id),
      allow_http: g.allow_http ?? false,
      leases: leasesOf(g.id),
    });
  }
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}
