// Setting a grant's secret, for `keyway secrets set` and PUT /api/grants/{grant}/secret.
import { GRANT_ID } from '../config/index.ts';
import { listGrants } from '../credentials/grant-listing.ts';
import { grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import { awsRoleStateId } from '../credentials/types/aws_sigv4/role-state.ts';
import { oauthStateId } from '../credentials/issuing/oauth-state.ts';
import { findPreset } from '../credentials/providers/presets.ts';
import { KeywayError } from '../errors/index.ts';
import { showGrant, type GrantResult, type GrantServices } from './grants.ts';
import { overlapWarnings } from './grant-input.ts';
import { parseSecretInput, type SecretInput } from './secret-input.ts';

export interface SecretResult extends GrantResult {
  /** No grant had this name, and a provider preset did: an oauth2 grant was made from it. */
  created: boolean;
}

/**
 * Sets (or rotates) grant `name`'s secret; new material replaces any token state a refresh or a
 * revoke left, so the grant is active again. When no grant has the name and it names a provider
 * preset (spotify, SPOTIFY_OAUTH, github, …), an oauth2 grant is made from the preset.
 */
export async function setSecret(services: GrantServices, name: string, input: SecretInput): Promise<SecretResult> {
  const id = services.store.get(grantRecordId(name)) || services.config.grants[name] ? name : (findPreset(name)?.slug ?? name);
  if (services.config.grants[id]) {
    throw new KeywayError('conflict', `grant "${id}" is defined in the config; its secret comes from there (env: or file:)`);
  }
  const others = listGrants(services);
  const created = await services.store.update((draft) => {
    const existing = draft.get<StoredGrant>(grantRecordId(id));
    const now = new Date().toISOString();
    let grant: StoredGrant;
    if (existing) {
      grant = existing;
    } else {
      const preset = findPreset(name);
      if (!preset)
        throw new KeywayError('not_found', `no grant "${name}"; add it with \`keyway grants add ${GRANT_ID.test(name) ? name : 'ID'} --type … --domains …\``);
      grant = { id, type: 'oauth2', domains: [...preset.preset.domains], provider: preset.slug, status: 'active', created_at: now, updated_at: now };
    }
    const secret = parseSecretInput(grant.type, input, grant.inject?.format);
    draft.set(grantRecordId(id), { ...grant, secret, status: 'active', updated_at: now } satisfies StoredGrant);
    draft.delete(oauthStateId(id));
    // Role credentials got with the old key go with it (a key replaced may be a key leaked).
    draft.delete(awsRoleStateId(id));
    return !existing;
  });
  const grant = showGrant(services, id);
  return { grant, created, warnings: created ? overlapWarnings(id, grant.domains, others) : [] };
}
