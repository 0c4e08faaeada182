import type { GrantStatus } from '../grant-record.ts';

/**
 * The live token state of an OAuth grant (record `oauth:<grant id>`), kept apart from the grant so
 * a refresh rewrites only this record. It wins over the tokens in the grant's secret material,
 * which holds what the user provided (client credentials, the first tokens).
 */
export interface OAuthState {
  accessToken?: string | undefined;
  refreshToken?: string | undefined;
  /** Epoch ms; undefined when the provider gave no expiry. */
  expiresAt?: number | undefined;
  scopes?: string[] | undefined;
  refreshedAt?: string | undefined;
  /** When a 401 last made the grant refresh (epoch ms): none again on a 401 within its renew_floor (renewal.ts). */
  renewedOn401At?: number | undefined;
  /** Set when the provider refused the refresh token, or the grant was revoked. */
  status?: GrantStatus | undefined;
}

export const oauthStateId = (grantId: string): string => `oauth:${grantId}`;
export const OAUTH_STATE_PREFIX = 'oauth:';
