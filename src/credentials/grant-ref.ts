import type { GrantType } from '../config/index.ts';
import type { GrantStatus } from './grant-record.ts';
import type { SecretMaterial } from './material.ts';

/**
 * A grant as the providers need it: which one, and of what type. Not the whole Grant, so that
 * providers do not depend on how grants are built (grants.ts imports them).
 */
export interface GrantRef {
  readonly id: string;
  readonly type: GrantType;
}

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
