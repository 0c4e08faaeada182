import type { GrantType } from '../config/index.ts';
import { grantRecordId, type StoredGrant } from '../credentials/grant-record.ts';
import type { OAuth2Material, OAuthServer } from '../credentials/material.ts';
import { oauthStateId } from '../credentials/issuing/oauth-state.ts';
import type { TokenSet } from '../credentials/issuing/token-endpoint.ts';
import type { CredentialStore } from '../credentials/store/index.ts';

export interface ConnectedGrant {
  id: string;
  type: Extract<GrantType, 'oauth2'>;
  provider: string;
  domains: string[];
  clientId: string | undefined;
  clientSecret: string | undefined;
  tokens: TokenSet;
  /** The authorization server a client keyway registered belongs to (keyway connect --mcp). */
  server?: OAuthServer | undefined;
  /** The MCP endpoint's path (keyway connect --mcp): its messages are judged by MCP rules. */
  mcpPaths?: string[] | undefined;
}

/**
 * Stores the tokens a connect flow obtained as grant `id` (made or replaced), and drops any live
 * token state left from before, so the new tokens are the ones in force.
 */
export async function saveConnectedGrant(store: CredentialStore, grant: ConnectedGrant): Promise<StoredGrant> {
  const now = new Date().toISOString();
  const secret: OAuth2Material = {
    clientId: grant.clientId,
    clientSecret: grant.clientSecret,
    refreshToken: grant.tokens.refreshToken,
    accessToken: grant.tokens.accessToken,
    expiresAt: grant.tokens.expiresAt,
    scopes: grant.tokens.scopes,
    ...(grant.server ? { server: grant.server } : {}),
  };
  return store.update((draft) => {
    const existing = draft.get<StoredGrant>(grantRecordId(grant.id));
    const record: StoredGrant = {
      id: grant.id,
      type: grant.type,
      domains: grant.domains,
      inject: existing?.inject,
      allow_http: existing?.allow_http,
      allow_range: existing?.allow_range,
      require_purpose: existing?.require_purpose,
      model_api: existing?.model_api,
      mcp: grant.mcpPaths ? { ...existing?.mcp, paths: grant.mcpPaths } : existing?.mcp,
      // Connecting again keeps what people gave the grant: its labels (its agents and leases name its id).
      labels: existing?.labels,
      provider: grant.provider,
      status: 'active',
      secret,
      // Who connected (an OpenID Connect id_token's name); a reconnect without one keeps the last known.
      account: grant.tokens.account ?? existing?.account,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    draft.set(grantRecordId(grant.id), record);
    draft.delete(oauthStateId(grant.id));
    return record;
  });
}
