import type { Dispatcher } from '../../net/undici.ts';

// What a minted type gives (its Minter: types/<type>/minter.ts) and gets back (a MintedToken);
// MintedTokens (minted-tokens.ts) runs every Minter under the one Renewer.

export interface MintContext {
  now: number;
  timeoutMs: number;
  dispatcher: Dispatcher | undefined;
}

/** One kind of minted credential: how its token is got, and what a held one must match. */
export interface Minter<Spec> {
  /** For messages: `a token from https://oauth2.googleapis.com`. */
  describe(spec: Spec): string;
  /** Everything a token depends on (key id, scopes, installation…), never a secret. */
  fingerprint(spec: Spec): string;
  mint(spec: Spec, context: MintContext): Promise<{ accessToken: string; expiresAt: number; boundKey?: string | undefined }>;
  /** How long before expiry the next one is minted. */
  mintBeforeMs: number;
  /** The hint a failure carries. */
  hint: string;
}

/** A minted token, as the request path takes it. */
export interface MintedToken {
  token: string;
  refreshed: boolean;
  /** The key the token is bound to, where its minter made one (MintedState.boundKey). */
  boundKey?: string | undefined;
  /** After a 401 within the grant's renew_floor: nothing minted, this is the token refused. */
  floored?: true | undefined;
}
