import { grantRecordId, type StoredGrant } from '../grant-record.ts';
import type { OAuthGrantRef } from '../grant-ref.ts';
import type { OAuthMaterial, SecretMaterial } from '../material.ts';
import { oauthStateId, type OAuthState } from './oauth-state.ts';
import type { StoreDraft } from '../store/draft.ts';
import type { WriteOutcome } from './pending-saves.ts';
import { needsReconnect } from './token-errors.ts';
import type { TokenStore } from './token-store.ts';

// An OAuth grant's live token state as the store holds it: read (the live record, else the tokens
// the user gave), written after a refresh unless something newer won meanwhile, marked when the
// provider refuses the refresh token.

/** The state in force: the live record if any, else the tokens the user provided. */
export function oauthStateOf(store: Pick<TokenStore, 'get'>, grant: OAuthGrantRef): OAuthState {
  return store.get<OAuthState>(oauthStateId(grant.id)) ?? materialState(grant.material);
}

/** Throws grant_needs_reconnect unless the grant, and its live state, are active. */
export function assertUsable(grant: OAuthGrantRef, state: OAuthState): void {
  // A revoked grant stays revoked whatever the token state says; otherwise the live state rules.
  const status = grant.status !== 'active' ? grant.status : (state.status ?? 'active');
  if (status !== 'active') throw needsReconnect(grant, `grant "${grant.id}" is ${status}`);
}

/**
 * Writes a refreshed state, unless the store (re-read under its lock) no longer holds the state it
 * was refreshed from: a new secret, a reconnect or a revoke written meanwhile wins over it.
 */
export function writeRefreshed(store: TokenStore, grant: OAuthGrantRef, from: OAuthState, next: OAuthState): Promise<WriteOutcome> {
  return store.update((draft): WriteOutcome => {
    const live = stateIn(draft, grant);
    // Already there: an earlier attempt renamed the file into place and failed after (the directory fsync).
    if (live.refreshedAt === next.refreshedAt && live.refreshToken === next.refreshToken && live.accessToken === next.accessToken) return 'saved';
    if (live.refreshToken !== from.refreshToken || (live.status ?? 'active') !== (from.status ?? 'active')) return 'superseded';
    draft.set(oauthStateId(grant.id), next);
    return 'saved';
  });
}

/** The provider refused the refresh token: no access token is sent until the grant is connected again. */
export async function markNeedsReconnect(store: TokenStore, grant: OAuthGrantRef): Promise<void> {
  await store.update((draft) => {
    const live = draft.get<OAuthState>(oauthStateId(grant.id)) ?? oauthStateOf(store, grant);
    draft.set(oauthStateId(grant.id), { ...live, accessToken: undefined, status: 'needs_reconnect' });
  });
}

/** oauthStateOf(), as the draft (the file just re-read under the store lock) has it. */
function stateIn(draft: StoreDraft, grant: OAuthGrantRef): OAuthState {
  const live = draft.get<OAuthState>(oauthStateId(grant.id));
  if (live) return live;
  // A grant from the config takes its secret from there; one made with the CLI, from its record.
  return materialState(grant.source === 'store' ? draft.get<StoredGrant>(grantRecordId(grant.id))?.secret : grant.material);
}

/**
 * The tokens the user provided, as a state (a grant with no refresh yet). Only a grant whose kind
 * says OAuth (issuer 'oauth') reaches the token manager, so its object material is OAuth material
 * without asking the registry, which issuing sits below; a token the config gives as text is not.
 */
function materialState(m: SecretMaterial | undefined): OAuthState {
  if (typeof m !== 'object' || m === null) return {};
  const o = m as OAuthMaterial;
  return { accessToken: o.accessToken, refreshToken: 'refreshToken' in o ? o.refreshToken : undefined, expiresAt: o.expiresAt, scopes: o.scopes };
}
