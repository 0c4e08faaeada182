import { grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import type { OAuth2Material } from '../credentials/material.ts';

/** The part of the store a reconnect reads. */
interface GrantReader {
  get<T>(id: string): T | undefined;
}

/**
 * A connect flow's view of the OAuth grant already stored under an id (ConnectRequest.existing):
 * the scopes its tokens carry and its domains. Another type of grant under the id is not merged with.
 */
export function existingOAuthGrant(store: GrantReader): (grantId: string) => { scopes: string[]; domains: string[] } | undefined {
  return (grantId) => {
    const stored = store.get<StoredGrant>(grantRecordId(grantId));
    if (stored === undefined || stored.type !== 'oauth2') return undefined;
    const material = stored.secret as OAuth2Material | undefined;
    return { scopes: [...(material?.scopes ?? [])], domains: [...stored.domains] };
  };
}
