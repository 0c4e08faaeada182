import type { Services } from '../services.ts';
import { injectorFor } from './injectors/index.ts';
import { GRANT_PREFIX, usageRecordId, type GrantUsage, type StoredGrant } from './grant-record.ts';

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
  token_expires_at: string | null;
  last_used_at: string | null;
  allow_http: boolean;
}

export function listGrants(services: Pick<Services, 'config' | 'store'>): GrantListing[] {
  const { config, store } = services;
  const lastUsed = (id: string) => store.get<GrantUsage>(usageRecordId(id))?.last_used_at ?? null;
  const describe = (type: StoredGrant['type'], inject: StoredGrant['inject']) => {
    try {
      return injectorFor(type, inject).describe();
    } catch (err) {
      return `invalid: ${(err as Error).message}`;
    }
  };
  const rows: GrantListing[] = Object.entries(config.grants).map(([id, g]) => ({
    id,
    type: g.type,
    domains: g.domains.map((d) => d.text),
    status: 'active',
    source: 'config',
    inject: describe(g.type, g.inject),
    provider: g.provider ?? null,
    secret: g.secret ? 'set' : 'missing',
    token_expires_at: null,
    last_used_at: lastUsed(id),
    allow_http: g.allow_http,
  }));
  for (const [, g] of store.entries<StoredGrant>(GRANT_PREFIX)) {
    if (config.grants[g.id]) continue;
    const expiresAt = typeof g.secret === 'object' && g.secret && 'expiresAt' in g.secret ? g.secret.expiresAt : undefined;
    rows.push({
      id: g.id,
      type: g.type,
      domains: g.domains,
      status: g.status,
      source: 'store',
      inject: describe(g.type, g.inject),
      provider: g.provider ?? null,
      secret: g.secret === undefined ? 'missing' : 'set',
      token_expires_at: typeof expiresAt === 'number' ? new Date(expiresAt).toISOString() : null,
      last_used_at: lastUsed(g.id),
      allow_http: g.allow_http ?? false,
    });
  }
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}
