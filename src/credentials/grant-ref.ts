import type { GrantType } from '../config/index.ts';
import type { GrantStatus } from './grant-record.ts';
import type { SecretMaterial } from './material.ts';

/**
 * A grant as the providers need it: which one, and of what type. Not the whole Grant, so that
 * issuing does not depend on how grants are built (grant-table.ts reaches it through the kinds).
 */
export interface GrantRef {
  readonly id: string;
  readonly type: GrantType;
  /** grants.ID.renew_floor in ms: a 401 renews its token at most once per this (absent: DEFAULT_RENEW_FLOOR_MS). */
  readonly renewFloorMs?: number | undefined;
}

/**
 * A 401 renews a grant's token at most once per this long by default (grants.ID.renew_floor): an
 * API that refuses every token would otherwise cost a token call per agent request, enough to
 * meet an authorization server's per-client limits for every agent on the grant.
 */
export const DEFAULT_RENEW_FLOOR_MS = 30_000;

/**
 * An OAuth grant as its token manager needs it: besides which one, whether it is still active,
 * its provider (the token endpoint, the reconnect hint), and the tokens or client the user gave,
 * with where they live (the config, or the store's grant record, re-read under the store's lock).
 */
export interface OAuthGrantRef extends GrantRef {
  readonly status: GrantStatus;
  readonly source: 'config' | 'store';
  readonly provider: string | undefined;
  readonly material: SecretMaterial | undefined;
}
