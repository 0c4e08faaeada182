import { dropCaptured } from '../capture/store/records.ts';
// Grants: add, show, change, remove. One implementation for `keyway grants …` and the admin API
// (src/admin/api/grants.ts): plain inputs in, listing rows out, KeywayError on refusal. A secret
// goes in and never comes back out.

import type { InjectConfig } from '../config/index.ts';
import { listGrants, type GrantListing } from '../credentials/grant-listing.ts';
import { clientCertificateRecordId, grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import { awsRoleStateId } from '../credentials/types/aws_sigv4/role-state.ts';
import { oauthStateId } from '../credentials/issuing/oauth-state.ts';
import { KeywayError } from '../errors/index.ts';
import type { Services } from '../open-home.ts';
import type { StoreDraft } from '../credentials/store/draft.ts';
import { usage, type Caller } from './fields.ts';
import { checkInjection, hasInjection, overlapWarnings } from './grant-input.ts';
import { otherPortWarnings } from './port-typo.ts';
import { parseSecretInput } from './secret-input.ts';

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

/** The zod input checks (grant-schema.ts), loaded by the first grant written: the proxy process runs without zod until then. */
const inputChecks = () => import('./grant-schema.ts');

export interface AddOptions {
  /**
   * A stored grant of the same id is replaced, in the same write, with its secret, tokens and
   * captured logins dropped (`keyway connect AGENT --replace`). Absent: it is refused.
   */
  replace?: boolean | undefined;
}

/**
 * Adds a grant to the store. `input` is a grant as grant-schema.ts's grantCreateInput describes it
 * (a JSON body, or what the command line's flags say), checked there: a refusal names the field
 * the way `caller` wrote it.
 */
export async function addGrant(services: GrantServices, input: unknown, caller: Caller, options: AddOptions = {}): Promise<GrantResult> {
  const { parseInput, grantCreateInput } = await inputChecks();
  const {
    id,
    type,
    domains,
    inject: given,
    provider,
    allow_http,
    allow_range,
    require_purpose,
    model_api,
    labels,
    mcp,
    secret: secretInput,
    ...ownKeys
  } = parseInput(grantCreateInput, input, caller);
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is already defined in the config`);
  const inject: InjectConfig = { header: given?.header, format: given?.format, query: given?.query, ...(given?.body ? { body: true } : {}) };
  checkInjection(type, inject);
  const secret = secretInput === undefined ? undefined : parseSecretInput(type, secretInput, inject.format);
  const now = new Date().toISOString();
  const record: StoredGrant = {
    id,
    type,
    domains,
    inject: hasInjection(inject) ? inject : undefined,
    allow_http: allow_http || undefined,
    allow_range: allow_range || undefined,
    require_purpose: require_purpose || undefined,
    model_api,
    mcp,
    // The type's own keys (credentials/types/<type>/fields.ts): the schema took only those of this type.
    ...ownKeys,
    provider,
    status: 'active',
    secret,
    labels: sortedLabels(labels),
    created_at: now,
    updated_at: now,
  };
  const others = listGrants(services);
  await services.store.update((draft) => {
    if (draft.get(grantRecordId(id))) {
      if (!options.replace)
        throw new KeywayError('conflict', `grant "${id}" exists; change it with \`keyway grants set ${id}\` or its secret with \`keyway secrets set ${id}\``);
      dropGrantState(draft, id);
    }
    draft.set(grantRecordId(id), record);
  });
  return { grant: showGrant(services, id), warnings: [...overlapWarnings(id, domains, others), ...(await otherPortWarnings(services.config, domains))] };
}

/**
 * Changes domains, injection, labels, allow_range, require_purpose, model_api or mcp in place (grant-schema.ts's grantChangeInput):
 * the secret, tokens, leases and usage stay. Each given injection part changes; `query` replaces a
 * header injection and a header replaces `query`. Labels are replaced as a whole ({} clears them).
 */
export async function updateGrant(services: GrantServices, id: string, change: unknown, caller: Caller): Promise<GrantResult> {
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; change it there`);
  const { parseInput, grantChangeInput } = await inputChecks();
  const {
    domains,
    inject: given,
    labels,
    allow_range: allowRange,
    require_purpose: requirePurpose,
    model_api: modelApi,
    mcp,
  } = parseInput(grantChangeInput, change, caller);
  const { header, format, query } = given ?? {};
  const nothing = [domains, header, format, query, labels, allowRange, requirePurpose, modelApi, mcp].every((v) => v === undefined);
  if (nothing) {
    throw usage(
      caller === 'cli'
        ? 'grants set: give at least one of --domains, --header, --format, --query, --label, --allow-range, --no-allow-range, --require-purpose, --no-require-purpose, --model-api, --mcp-path'
        : 'give at least one of domains, inject.header, inject.format, inject.query, labels, allow_range, require_purpose, model_api, mcp',
    );
  }
  if (query !== undefined && (header !== undefined || format !== undefined)) {
    throw usage(caller === 'cli' ? 'use --query or --header/--format, not both' : 'use inject.query or inject.header/format, not both');
  }
  await services.store.update((draft) => {
    const existing = draft.get<StoredGrant>(grantRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no grant "${id}" (see keyway grants list)`);
    let inject = existing.inject;
    // A change of header or query keeps the grant's body swap (inject.body) as it was.
    const body = existing.inject?.body ? { body: existing.inject.body } : {};
    if (query !== undefined) inject = { query, ...body };
    else if (header !== undefined || format !== undefined) {
      const old = existing.inject?.query === undefined ? existing.inject : undefined;
      inject = { header: header ?? old?.header, format: format ?? old?.format, ...body };
    }
    checkInjection(existing.type, inject ?? {});
    const nextLabels = labels === undefined ? existing.labels : sortedLabels(labels);
    const changed: StoredGrant = {
      ...existing,
      domains: domains ?? existing.domains,
      inject: hasInjection(inject) ? inject : undefined,
      labels: nextLabels,
      allow_range: allowRange === undefined ? existing.allow_range : allowRange || undefined,
      require_purpose: requirePurpose === undefined ? existing.require_purpose : requirePurpose || undefined,
      model_api: modelApi ?? existing.model_api,
      mcp: mcp ?? existing.mcp,
      updated_at: new Date().toISOString(),
    };
    draft.set(grantRecordId(id), changed);
  });
  const grant = showGrant(services, id);
  return {
    grant,
    warnings: domains === undefined ? [] : [...overlapWarnings(id, domains, listGrants(services)), ...(await otherPortWarnings(services.config, domains))],
  };
}

/**
 * What a stored grant left beside its record: tokens a refresh left, a client certificate, captured
 * logins. Dropped with the grant, or they would outlive it and come back with a new one of the same id.
 */
function dropGrantState(draft: StoreDraft, id: string): void {
  draft.delete(oauthStateId(id));
  draft.delete(awsRoleStateId(id));
  draft.delete(clientCertificateRecordId(id));
  dropCaptured(draft, (record) => record.grant === id);
}

/** Labels as kept: by name, none at all rather than an empty map. */
function sortedLabels(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/**
 * Removes a stored grant with its token state and the tokens captured for it. A grant from the
 * config is removed there; a login_capture grant of the config has its captured tokens dropped
 * (every agent's placeholders stop resolving: they log in again).
 */
export async function removeGrant(services: GrantServices, id: string): Promise<{ removed: string; captured_dropped?: number }> {
  const configured = services.config.grants[id];
  if (configured?.type === 'login_capture') {
    const dropped = await services.store.update((draft) => dropCaptured(draft, (record) => record.grant === id));
    return { removed: id, captured_dropped: dropped };
  }
  if (configured) throw new KeywayError('conflict', `grant "${id}" is defined in the config; remove it there`);
  const removed = await services.store.update((draft) => {
    const existed = draft.delete(grantRecordId(id));
    if (existed) dropGrantState(draft, id);
    return existed;
  });
  if (!removed) throw new KeywayError('not_found', `no grant "${id}"`);
  return { removed: id };
}
