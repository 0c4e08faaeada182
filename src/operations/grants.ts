// Grants: add, show, change, remove. One implementation for `keyway grants …` and the admin API
// (src/admin/api/grants.ts): plain inputs in, listing rows out, KeywayError on refusal. A secret
// goes in and never comes back out.

import { GRANT_ID, GRANT_TYPES, type GrantType, type InjectConfig } from '../config/index.ts';
import { listGrants, type GrantListing } from '../credentials/grant-listing.ts';
import { grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import { oauthStateId } from '../credentials/oauth-state.ts';
import { KeywayError } from '../errors/index.ts';
import type { Services } from '../services.ts';
import { fieldName, usage, type Caller } from './fields.ts';
import { checkDomains, checkInjection, checkLabels, hasInjection, overlapWarnings } from './grant-input.ts';
import { parseSecretInput, type SecretInput } from './secret-input.ts';

/** The part of Services a grant operation reads and writes. */
export type GrantServices = Pick<Services, 'config' | 'store'>;

export interface GrantResult {
  grant: GrantListing;
  /** Other grants whose domains overlap this one's, in lines for a person (empty when none). */
  warnings: string[];
}

export function showGrant(services: GrantServices, id: string): GrantListing {
  const row = listGrants(services).find((g) => g.id === id);
  if (!row) throw new KeywayError('not_found', `no grant "${id}"`);
  return row;
}

export interface NewGrant {
  id: string;
  type: string | undefined;
  domains: readonly string[] | undefined;
  inject?: InjectConfig | undefined;
  provider?: string | undefined;
  allowHttp?: boolean | undefined;
  allowRange?: boolean | undefined;
  labels?: unknown;
  /** Write-only: parsed for the grant's type, stored encrypted, never returned. */
  secret?: SecretInput | undefined;
}

export async function addGrant(services: GrantServices, input: NewGrant, caller: Caller): Promise<GrantResult> {
  const { id } = input;
  if (!GRANT_ID.test(id)) throw usage(`grant id "${id}": expected a-z, 0-9 and - (starting with a letter or digit), up to 63 characters`);
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is already defined in the config`);
  const type = input.type as GrantType | undefined;
  if (!type || !GRANT_TYPES.includes(type)) throw usage(`${fieldName('type', caller)}: expected one of ${GRANT_TYPES.join(', ')}`);
  const domains = checkDomains(input.domains, caller);
  if (domains === undefined) throw usage(`${fieldName('domains', caller)}: expected at least one domain`);
  const inject: InjectConfig = { header: input.inject?.header, format: input.inject?.format, query: input.inject?.query };
  checkInjection(type, inject, caller);
  const labels = checkLabels(input.labels, caller);
  const secret = input.secret === undefined ? undefined : parseSecretInput(type, input.secret);
  const now = new Date().toISOString();
  const record: StoredGrant = {
    id,
    type,
    domains,
    inject: hasInjection(inject) ? inject : undefined,
    allow_http: input.allowHttp || undefined,
    allow_range: input.allowRange || undefined,
    provider: input.provider,
    status: 'active',
    secret,
    labels: labels && Object.keys(labels).length > 0 ? labels : undefined,
    created_at: now,
    updated_at: now,
  };
  const others = listGrants(services);
  await services.store.update((draft) => {
    if (draft.get(grantRecordId(id)))
      throw new KeywayError('conflict', `grant "${id}" exists; change it with \`keyway grants set ${id}\` or its secret with \`keyway secrets set ${id}\``);
    draft.set(grantRecordId(id), record);
  });
  return { grant: showGrant(services, id), warnings: overlapWarnings(id, domains, others) };
}

export interface GrantChange {
  domains?: readonly string[] | undefined;
  /** Each given part changes; `query` replaces a header injection and a header replaces `query`. */
  inject?: InjectConfig | undefined;
  /** Replaces the labels as a whole ({} clears them). */
  labels?: unknown;
  /** Range and If-Range passed on (true) or dropped (false) on injected requests. */
  allowRange?: boolean | undefined;
}

/**
 * Changes domains, injection or labels in place: the secret, tokens, leases and usage stay. The
 * injection parts replace the old injection as a whole where they conflict (query drops a header and back).
 */
export async function updateGrant(services: GrantServices, id: string, change: GrantChange, caller: Caller): Promise<GrantResult> {
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; change it there`);
  const domains = checkDomains(change.domains, caller);
  const { header, format, query } = change.inject ?? {};
  const labels = checkLabels(change.labels, caller);
  const { allowRange } = change;
  if (domains === undefined && header === undefined && format === undefined && query === undefined && labels === undefined && allowRange === undefined) {
    throw usage(
      caller === 'cli'
        ? 'grants set: give at least one of --domains, --header, --format, --query, --label, --allow-range, --no-allow-range'
        : 'give at least one of domains, inject.header, inject.format, inject.query, labels, allow_range',
    );
  }
  if (query !== undefined && (header !== undefined || format !== undefined)) {
    throw usage(caller === 'cli' ? 'use --query or --header/--format, not both' : 'use inject.query or inject.header/format, not both');
  }
  await services.store.update((draft) => {
    const existing = draft.get<StoredGrant>(grantRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no grant "${id}" (see keyway grants list)`);
    let inject = existing.inject;
    if (query !== undefined) inject = { query };
    else if (header !== undefined || format !== undefined) {
      const old = existing.inject?.query === undefined ? existing.inject : undefined;
      inject = { header: header ?? old?.header, format: format ?? old?.format };
    }
    checkInjection(existing.type, inject ?? {}, caller);
    const nextLabels = labels === undefined ? existing.labels : Object.keys(labels).length > 0 ? labels : undefined;
    const changed: StoredGrant = {
      ...existing,
      domains: domains ?? existing.domains,
      inject: hasInjection(inject) ? inject : undefined,
      labels: nextLabels,
      allow_range: allowRange === undefined ? existing.allow_range : allowRange || undefined,
      updated_at: new Date().toISOString(),
    };
    draft.set(grantRecordId(id), changed);
  });
  const grant = showGrant(services, id);
  return { grant, warnings: domains === undefined ? [] : overlapWarnings(id, domains, listGrants(services)) };
}

/** Removes a stored grant with its token state. A grant from the config is removed there. */
export async function removeGrant(services: GrantServices, id: string): Promise<{ removed: string }> {
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; remove it there`);
  const removed = await services.store.update((draft) => {
    const existed = draft.delete(grantRecordId(id));
    // Tokens a refresh left would otherwise outlive the grant, and come back with a new one of the same id.
    if (existed) draft.delete(oauthStateId(id));
    return existed;
  });
  if (!removed) throw new KeywayError('not_found', `no grant "${id}"`);
  return { removed: id };
}
