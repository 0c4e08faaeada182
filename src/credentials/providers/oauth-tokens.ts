import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Dispatcher } from '../../net/undici.ts';
import { ProxyError } from '../../errors/index.ts';
import type { Grant } from '../grants.ts';
import type { ClientCredentialsMaterial } from '../material.ts';
import { oauthStateId, type OAuthState } from '../oauth-state.ts';
import type { Store } from '../store/index.ts';
import { withRefreshLock } from './refresh-lock.ts';
import { requestToken, TokenEndpointError, type TokenEndpoint, type TokenSet } from './token-endpoint.ts';

export interface TokenManagerOptions {
  store: Store;
  /** Where the per-grant refresh locks live (data/locks). */
  lockDir: string;
  /** The token endpoint and client for a grant, or undefined when its provider is unknown. */
  endpointFor(grant: Grant): TokenEndpoint | undefined;
  skewMs: number;
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  logger?: Logger | undefined;
  now?: () => number;
}

export interface AccessToken {
  token: string;
  /** A refresh happened to produce it (for the audit line). */
  refreshed: boolean;
}

interface Failure {
  count: number;
  nextAttemptAt: number;
  error: ProxyError;
}

const MAX_BACKOFF_MS = 60_000;

/**
 * Access tokens for oauth2 and client_credentials grants. The request path reads memory only; a
 * refresh happens before expiry (skew), once per grant however many requests wait (single flight in
 * this process, a lock file across processes), persists the rotated refresh token before the new
 * access token is used, and never hands out an expired token.
 */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<AccessToken>>();
  readonly #failures = new Map<string, Failure>();

  constructor(options: TokenManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The state in force: the live record if any, else the tokens the user provided. */
  state(grant: Grant): OAuthState {
    const live = this.#o.store.get<OAuthState>(oauthStateId(grant.id));
    if (live) return live;
    const m = grant.material;
    if (!m || typeof m !== 'object' || 'username' in m) return {};
    return { accessToken: m.accessToken, refreshToken: 'refreshToken' in m ? m.refreshToken : undefined, expiresAt: m.expiresAt, scopes: m.scopes };
  }

  /** A token valid beyond the skew; refreshes first when needed. */
  async accessToken(grant: Grant): Promise<AccessToken> {
    const state = this.state(grant);
    this.#assertUsable(grant, state);
    if (state.accessToken && this.#fresh(state)) return { token: state.accessToken, refreshed: false };
    return this.#singleFlight(grant, state.accessToken, false);
  }

  /**
   * The upstream refused `rejected` (401). Refresh once, shared with every request that saw the
   * same rejection; a request that comes after someone else already refreshed gets the new token.
   */
  async afterRejection(grant: Grant, rejected: string): Promise<AccessToken> {
    const state = this.state(grant);
    this.#assertUsable(grant, state);
    if (state.accessToken && state.accessToken !== rejected && this.#fresh(state)) return { token: state.accessToken, refreshed: false };
    return this.#singleFlight(grant, rejected, true);
  }

  /** `keyway refresh ID`: refresh now, whatever the expiry. */
  refreshNow(grant: Grant): Promise<AccessToken> {
    return this.#singleFlight(grant, this.state(grant).accessToken, true);
  }

  #fresh(state: OAuthState): boolean {
    return state.expiresAt === undefined || state.expiresAt - this.#o.skewMs > this.#now();
  }

  #notExpired(state: OAuthState): boolean {
    return state.accessToken !== undefined && (state.expiresAt === undefined || state.expiresAt > this.#now());
  }

  #assertUsable(grant: Grant, state: OAuthState): void {
    // A revoked grant stays revoked whatever the token state says; otherwise the live state rules.
    const status = grant.status !== 'active' ? grant.status : (state.status ?? 'active');
    if (status !== 'active') throw needsReconnect(grant, `grant "${grant.id}" is ${status}`);
  }

  #singleFlight(grant: Grant, staleToken: string | undefined, force: boolean): Promise<AccessToken> {
    const running = this.#inFlight.get(grant.id);
    if (running) return running;
    const attempt = this.#refresh(grant, staleToken, force).finally(() => this.#inFlight.delete(grant.id));
    this.#inFlight.set(grant.id, attempt);
    return attempt;
  }

  async #refresh(grant: Grant, staleToken: string | undefined, force: boolean): Promise<AccessToken> {
    const failure = this.#failures.get(grant.id);
    if (failure && this.#now() < failure.nextAttemptAt) {
      // Backing off: no call to the endpoint. A token not yet expired is still good to send.
      const state = this.state(grant);
      if (!force && state.accessToken && this.#notExpired(state)) return { token: state.accessToken, refreshed: false };
      throw failure.error;
    }
    const endpoint = this.#o.endpointFor(grant);
    if (!endpoint) {
      throw new ProxyError('token_refresh_failed', `grant "${grant.id}" has no known provider to refresh with`, {
        grant: grant.id,
        hint: 'set the grant\'s provider to a preset or a provider in the config',
      });
    }
    try {
      const result = await withRefreshLock(join(this.#o.lockDir), grant.id, this.#o.timeoutMs + 5_000, () => this.#refreshLocked(grant, endpoint, staleToken, force));
      this.#failures.delete(grant.id);
      return result;
    } catch (err) {
      if (err instanceof ProxyError && err.code === 'grant_needs_reconnect') throw err;
      const error =
        err instanceof ProxyError
          ? err
          : new ProxyError('token_refresh_failed', err instanceof TokenEndpointError ? err.message : `refresh of grant "${grant.id}" failed`, {
              grant: grant.id,
              cause: err,
              hint: 'keyway retries with backoff; check the provider\'s status',
            });
      const count = (failure?.count ?? 0) + 1;
      this.#failures.set(grant.id, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      this.#o.logger?.warn({ grant: grant.id, failures: count }, 'token refresh failed');
      const state = this.state(grant);
      if (!force && state.accessToken && this.#notExpired(state)) return { token: state.accessToken, refreshed: false };
      throw error;
    }
  }

  async #refreshLocked(grant: Grant, endpoint: TokenEndpoint, staleToken: string | undefined, force: boolean): Promise<AccessToken> {
    // Another process may have refreshed while we waited for the lock: re-read the store from disk.
    const current = await this.#reread(grant);
    this.#assertUsable(grant, current);
    if (current.accessToken && current.accessToken !== staleToken && this.#fresh(current)) {
      return { token: current.accessToken, refreshed: false };
    }
    if (!force && current.accessToken && this.#fresh(current)) return { token: current.accessToken, refreshed: false };

    let tokens: TokenSet;
    try {
      tokens = await this.#callEndpoint(grant, endpoint, current);
    } catch (err) {
      if (!(err instanceof TokenEndpointError) || err.kind !== 'invalid_grant') throw err;
      // A rotation by another process that we did not see yet looks the same as a dead grant:
      // look again before giving up on it.
      const again = await this.#reread(grant);
      if (again.refreshToken !== current.refreshToken && again.accessToken && this.#fresh(again)) {
        return { token: again.accessToken, refreshed: false };
      }
      await this.#markNeedsReconnect(grant);
      throw needsReconnect(grant, `the provider refused grant "${grant.id}"'s refresh token (invalid_grant)`);
    }
    const next: OAuthState = {
      accessToken: tokens.accessToken,
      // No new refresh token in the answer: the old one stays valid (RFC 6749 6).
      refreshToken: tokens.refreshToken ?? current.refreshToken,
      expiresAt: tokens.expiresAt,
      scopes: tokens.scopes ?? current.scopes,
      refreshedAt: new Date(this.#now()).toISOString(),
      status: 'active',
    };
    // Persist first: a crash after this line keeps the rotated refresh token; the access token
    // is handed out only once it is on disk.
    await this.#o.store.update((draft) => draft.set(oauthStateId(grant.id), next));
    this.#o.logger?.info({ grant: grant.id, rotated: tokens.refreshToken !== undefined }, 'token refreshed');
    return { token: next.accessToken!, refreshed: true };
  }

  #callEndpoint(grant: Grant, endpoint: TokenEndpoint, current: OAuthState): Promise<TokenSet> {
    const options = { timeoutMs: this.#o.timeoutMs, dispatcher: this.#o.dispatcher, now: this.#now };
    if (grant.type === 'client_credentials') {
      const m = grant.material as ClientCredentialsMaterial | undefined;
      const params: Record<string, string> = { grant_type: 'client_credentials' };
      if (m?.scopes?.length) params['scope'] = m.scopes.join(' ');
      return requestToken(endpoint, params, options);
    }
    if (!current.refreshToken) {
      throw new TokenEndpointError('invalid_grant', `grant "${grant.id}" has no refresh token`);
    }
    return requestToken(endpoint, { grant_type: 'refresh_token', refresh_token: current.refreshToken }, options);
  }

  async #reread(grant: Grant): Promise<OAuthState> {
    // update() re-reads the file under the store lock; writing nothing, it writes nothing.
    await this.#o.store.update(() => undefined);
    return this.state(grant);
  }

  async #markNeedsReconnect(grant: Grant): Promise<void> {
    await this.#o.store.update((draft) => {
      const live = draft.get<OAuthState>(oauthStateId(grant.id)) ?? this.state(grant);
      draft.set(oauthStateId(grant.id), { ...live, accessToken: undefined, status: 'needs_reconnect' });
    });
  }
}

function needsReconnect(grant: Grant, message: string): ProxyError {
  return new ProxyError('grant_needs_reconnect', message, {
    grant: grant.id,
    hint: `keyway connect ${grant.provider ?? grant.id} --grant ${grant.id}`,
  });
}

