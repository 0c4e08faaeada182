import type { Logger } from 'pino';
import { ProxyError } from '../../errors/index.ts';
import type { Dispatcher } from '../../net/undici.ts';
import { DEFAULT_RENEW_FLOOR_MS, type GrantRef } from '../grant-ref.ts';
import type { MintedToken, Minter } from './minter.ts';
import type { TokenObserver, TokenStore } from './token-store.ts';
import { type Renewal, type Renewed, RenewalTooShort, Renewer } from './renewer.ts';
import { renewFloorOf } from './renewal.ts';
import { lookSinceAsked } from '../store/since-asked.ts';
import { TokenEndpointError } from './token-endpoint.ts';

// Tokens keyway mints from a key the grant holds (a Google service account's assertion, a GitHub
// App's JWT): kept sealed in the store (`minted:<grant>`) and renewed by the Renewer (renewer.ts:
// once per expiry across processes and replicas, backoff, a token still valid for a minute used
// while minting fails, never one past its expiry). A mint that fails is 502 token_refresh_failed.
// What each kind mints is its Minter; this file is the Renewal they share.

export interface MintedState {
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
  /** What it was minted for (the Minter's fingerprint): a token for another key or scope is not used. */
  mintedFor: string;
  mintedAt: string;
  /** The private key the token is bound to (DPoP), PKCS#8 DER in base64, sealed with it: minted with the token, never sent. */
  boundKey?: string | undefined;
  /** When a 401 last made the grant mint (epoch ms): none again on a 401 within its renew_floor (renewal.ts RenewFloor). */
  renewedOn401At?: number | undefined;
}

export const MINTED_PREFIX = 'minted:';
export const mintedStateId = (grantId: string): string => `${MINTED_PREFIX}${grantId}`;

export interface MintedOptions {
  store: TokenStore;
  lockDir: string;
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  logger?: Logger | undefined;
  now?: (() => number) | undefined;
  observer?: TokenObserver | undefined;
}

export class MintedTokens {
  readonly #o: MintedOptions;
  readonly #renewer: Renewer;
  readonly #caughtUp: () => Promise<void>;

  /** `renewer`: the process's one Renewer (app/parts.ts), shared with every renewing kind; else one of its own. */
  constructor(options: MintedOptions, renewer?: Renewer) {
    this.#o = options;
    this.#renewer = renewer ?? new Renewer(options);
    this.#caughtUp = lookSinceAsked(async () => {
      await options.store.catchUp?.();
    });
  }

  /** The token held for this grant and what it mints for, expired or not. */
  state<S>(grant: GrantRef, minter: Minter<S>, spec: S): MintedState | undefined {
    return this.#renewer.held(this.#renewal(grant, minter, spec));
  }

  /** A token valid beyond the margin: the one held, else a new one (joining a mint in flight). */
  async token<S>(grant: GrantRef, minter: Minter<S>, spec: S): Promise<MintedToken> {
    // As for OAuth tokens (oauth-tokens.ts): a token another process minted after a 401 is the
    // store's now, so memory catches up first and the refused one is not sent (memory when the store cannot be read).
    await this.#caughtUp().catch(() => undefined);
    return tokenOf(await this.#renewer.get(this.#renewal(grant, minter, spec)));
  }

  /**
   * A new token now, whatever the held one's expiry (keyway refresh, POST /api/grants/{id}/refresh),
   * under the same single flight and lock as the proxy's: a mint already in flight is joined. A
   * failure is thrown (token_refresh_failed) and starts no backoff for the proxy's requests.
   */
  async mintNow<S>(grant: GrantRef, minter: Minter<S>, spec: S): Promise<MintedToken> {
    return tokenOf(await this.#renewer.renewNow(this.#renewal(grant, minter, spec)));
  }

  /**
   * After the upstream refused `used` (a 401: the provider revoked it, say): a new token, once for
   * all the requests refused with it: the first mints, the others join it or find the new one held.
   * Within the grant's renew_floor of the last mint a 401 made: `used` again, floored, nothing minted.
   */
  async afterRejection<S>(grant: GrantRef, minter: Minter<S>, spec: S, used: string): Promise<MintedToken> {
    return tokenOf(await this.#renewer.afterRejection(this.#renewal(grant, minter, spec), (held) => held.accessToken === used));
  }

  #renewal<S>(grant: GrantRef, minter: Minter<S>, spec: S): Renewal<MintedState> {
    const { store, timeoutMs, dispatcher } = this.#o;
    const mintedFor = minter.fingerprint(spec);
    return {
      grantId: grant.id,
      stored: () => store.get<MintedState>(mintedStateId(grant.id)),
      isFor: (held) => held.mintedFor === mintedFor,
      expiresAt: (held) => held.expiresAt,
      issuedAt: (held) => held.mintedAt,
      renewBeforeMs: minter.mintBeforeMs,
      renewFloor: renewFloorOf<MintedState>(grant.renewFloorMs ?? DEFAULT_RENEW_FLOOR_MS),
      fetch: async (now) => {
        const minted = await minter.mint(spec, { now, timeoutMs, dispatcher });
        const state: MintedState = { accessToken: minted.accessToken, expiresAt: minted.expiresAt, mintedFor, mintedAt: new Date(now).toISOString() };
        if (minted.boundKey !== undefined) state.boundKey = minted.boundKey;
        return state;
      },
      save: (draft, next) => draft.set(mintedStateId(grant.id), next),
      failed: (err) =>
        err instanceof ProxyError
          ? err
          : new ProxyError(
              'token_refresh_failed',
              `grant "${grant.id}" could not get ${minter.describe(spec)}: ${err instanceof TokenEndpointError ? err.message : err instanceof RenewalTooShort ? 'the answer holds a token that expires at once' : 'the mint failed'}`,
              { grant: grant.id, cause: err, hint: minter.hint },
            ),
      storeDown: (err) =>
        new ProxyError('token_refresh_failed', `grant "${grant.id}" cannot mint a token while the store's database is unavailable`, {
          grant: grant.id,
          cause: err,
          hint: "keyway mints on the next request once the database is back; /readyz shows the store's state",
        }),
      unsaved: 'fail',
      log: { renewed: 'token minted', failed: 'token mint failed', fields: (next) => ({ expires_at: new Date(next.expiresAt).toISOString() }) },
    };
  }
}

function tokenOf({ state, renewed, floored }: Renewed<MintedState>): MintedToken {
  return { token: state.accessToken, refreshed: renewed, boundKey: state.boundKey, floored };
}
