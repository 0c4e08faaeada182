import type { Logger } from 'pino';
import type { Dispatcher } from '../../net/undici.ts';
import type { OAuthGrantRef } from '../grant-ref.ts';
import type { OAuthState } from './oauth-state.ts';
import { assertUsable, oauthStateOf } from './oauth-grant-state.ts';
import { freshToken, oauthRenewal } from './oauth-renewal.ts';
import { lookSinceAsked } from '../store/since-asked.ts';
import { PendingSaves } from './pending-saves.ts';
import { type Renewal, type Renewed, Renewer } from './renewer.ts';
import type { TokenEndpoint } from './token-endpoint.ts';
import { pendingSaveError, supersededError } from './token-errors.ts';
import type { TokenObserver, TokenStore } from './token-store.ts';

// The store and observer types every renewal shares, where callers of the token manager have found them.
export type { TokenObserver, TokenRequestResult, TokenStore } from './token-store.ts';

export interface TokenManagerOptions {
  store: TokenStore;
  /** Where the per-grant refresh locks live (data/locks). */
  lockDir: string;
  /** The token endpoint and client for a grant, or undefined when its provider is unknown. */
  endpointFor(grant: OAuthGrantRef): TokenEndpoint | undefined;
  skewMs: number;
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  logger?: Logger | undefined;
  now?: () => number;
  /** Hears of every token endpoint call and every saved refresh (the proxy's metrics). */
  observer?: TokenObserver | undefined;
}

export interface AccessToken {
  token: string;
  /** A refresh happened to produce it (for the audit line). */
  refreshed: boolean;
  /** After a 401 within the grant's renew_floor: no refresh, this is the token refused. */
  floored?: true | undefined;
}

// `keyway refresh` is a short-lived process: it keeps retrying a failed save this long before it
// gives up (and with it, on a rotating provider, the grant).
const SETTLE_WAIT_MS = 20_000;

/**
 * Access tokens for oauth2 and client_credentials grants. The request path reads memory only; a
 * refresh happens before expiry (skew), once per grant however many requests wait, persists the
 * rotated refresh token before the new access token is used, and never hands out an expired token:
 * the Renewer's lifecycle (renewer.ts), with an OAuth refresh as its Renewal (oauth-renewal.ts). A
 * refreshed state the store could not take is kept in memory (PendingSaves) and saved before the
 * grant refreshes again.
 */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #now: () => number;
  readonly #pending: PendingSaves;
  readonly #renewer: Renewer;
  readonly #caughtUp: () => Promise<void>;

  /** `renewer`: the process's one Renewer (app/parts.ts), shared with every renewing kind; else one of its own. */
  constructor(options: TokenManagerOptions, renewer?: Renewer) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#pending = new PendingSaves({ now: this.#now, logger: options.logger });
    this.#renewer = renewer ?? new Renewer({ ...options, now: this.#now });
    this.#caughtUp = lookSinceAsked(async () => {
      await options.store.catchUp?.();
    });
  }

  /** Whether the grant's token endpoint has a client id and secret without the grant's own secret (its provider's). */
  hasOwnClient(grant: OAuthGrantRef): boolean {
    const endpoint = this.#o.endpointFor(grant);
    return endpoint?.clientId !== undefined && endpoint.clientSecret !== undefined;
  }

  /** The state in force: the live record if any, else the tokens the user provided. */
  state(grant: OAuthGrantRef): OAuthState {
    return oauthStateOf(this.#o.store, grant);
  }

  /** Does this grant hold refreshed tokens the store has not taken yet? */
  hasPendingSave(grantId: string): boolean {
    return this.#pending.has(grantId);
  }

  /** A token valid beyond the skew; refreshes first when needed. */
  async accessToken(grant: OAuthGrantRef): Promise<AccessToken> {
    // A token another process renewed after an upstream refused the old one (a 401) is the store's
    // now: memory catches up first (a stat, or one query; shared by a burst, never older than the
    // request), so no process sends the refused token after the renewal's answer went back. A store
    // that cannot be read just then: memory, as before (its watch reports it; a renewal reads under the lock).
    await this.#caughtUp().catch(() => undefined);
    assertUsable(grant, this.state(grant));
    return tokenOf(await this.#renewer.get(this.#renewal(grant)));
  }

  /**
   * The upstream refused `rejected` (401). Refresh once, shared with every request that saw the
   * same rejection; a request that comes after someone else already refreshed gets the new token.
   * Within the grant's renew_floor of the last refresh a 401 made: `rejected` again, floored.
   */
  async afterRejection(grant: OAuthGrantRef, rejected: string): Promise<AccessToken> {
    assertUsable(grant, this.state(grant));
    const refused = (state: OAuthState) => (state.accessToken ?? '') === rejected;
    return tokenOf(await this.#renewer.afterRejection(this.#renewal(grant), refused, this.#freshOtherThan(rejected)));
  }

  /**
   * Before the process stops: tries once more to save every refreshed state a failed write left in
   * memory (it holds the only valid refresh token), for up to `waitMs`. Returns the grants lost.
   */
  settlePending(waitMs: number): Promise<string[]> {
    return this.#pending.settleAll(this.#now() + waitMs);
  }

  /** `keyway refresh ID`: refresh now, whatever the expiry. */
  async refreshNow(grant: OAuthGrantRef): Promise<AccessToken> {
    try {
      return tokenOf(await this.#renewer.renewNow(this.#renewal(grant), this.#freshOtherThan(this.state(grant).accessToken)));
    } catch (err) {
      // The caller may be a process about to exit: it must not leave with the only valid refresh token.
      const pending = this.#pending.get(grant.id);
      if (!pending) throw err;
      const outcome = await this.#pending.settle(grant.id, this.#now() + SETTLE_WAIT_MS);
      if (outcome === 'saved' && pending.next.accessToken) return { token: pending.next.accessToken, refreshed: true };
      throw outcome === 'failed' ? pendingSaveError(grant, pending.lastError) : supersededError(grant);
    }
  }

  /** What meets a forced refresh: a token valid beyond the skew, other than the stale one it was asked about. */
  #freshOtherThan(stale: string | undefined): (state: OAuthState) => boolean {
    return (state) => Boolean(state.accessToken) && state.accessToken !== stale && freshToken(state, this.#o.skewMs, this.#now());
  }

  #renewal(grant: OAuthGrantRef): Renewal<OAuthState> {
    const { store, endpointFor, skewMs, timeoutMs, dispatcher, logger } = this.#o;
    return oauthRenewal(grant, { store, pending: this.#pending, endpointFor, skewMs, timeoutMs, dispatcher, logger, now: this.#now });
  }
}

function tokenOf({ state, renewed, floored }: Renewed<OAuthState>): AccessToken {
  return { token: state.accessToken!, refreshed: renewed, floored };
}
