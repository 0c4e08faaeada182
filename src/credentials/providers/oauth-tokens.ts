import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Dispatcher } from '../../net/undici.ts';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import { grantRecordId, type StoredGrant } from '../grant-record.ts';
import type { Grant } from '../grants.ts';
import { type ClientCredentialsMaterial, oauthMaterialOf, type SecretMaterial } from '../material.ts';
import { oauthStateId, type OAuthState } from '../oauth-state.ts';
import type { StoreDraft } from '../store/index.ts';
import type { TokenObserver, TokenRequestResult, TokenStore } from './token-store.ts';
import { PendingSaves, reasonOf, type PendingState, type WriteOutcome } from './pending-saves.ts';
import { needsReconnect, pendingSaveError, supersededError } from './token-errors.ts';
import { acquireRefreshLock, type ReleaseRefreshLock } from './refresh-lock.ts';
import { requestToken, TokenEndpointError, type TokenEndpoint, type TokenSet } from './token-endpoint.ts';

// The store and observer types every renewal shares, where callers of the token manager have found them.
export type { TokenObserver, TokenRequestResult, TokenStore } from './token-store.ts';

export interface TokenManagerOptions {
  store: TokenStore;
  /** Where the per-grant refresh locks live (data/locks). */
  lockDir: string;
  /** The token endpoint and client for a grant, or undefined when its provider is unknown. */
  endpointFor(grant: Grant): TokenEndpoint | undefined;
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
}

interface Failure {
  count: number;
  nextAttemptAt: number;
  error: ProxyError;
}

const MAX_BACKOFF_MS = 60_000;
// `keyway refresh` is a short-lived process: it keeps retrying a failed save this long before it
// gives up (and with it, on a rotating provider, the grant).
const SETTLE_WAIT_MS = 20_000;

/**
 * Access tokens for oauth2 and client_credentials grants. The request path reads memory only; a
 * refresh happens before expiry (skew), once per grant however many requests wait (single flight in
 * this process, a lock file across processes), persists the rotated refresh token before the new
 * access token is used, and never hands out an expired token. A refreshed state the store could not
 * take is kept in memory (PendingSaves) and saved before the grant refreshes again.
 */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<AccessToken>>();
  readonly #failures = new Map<string, Failure>();
  readonly #pending: PendingSaves;

  constructor(options: TokenManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#pending = new PendingSaves({ now: this.#now, logger: options.logger });
  }

  /** The state in force: the live record if any, else the tokens the user provided. */
  /** Whether the grant's token endpoint has a client id and secret without the grant's own secret (its provider's). */
  hasOwnClient(grant: Grant): boolean {
    const endpoint = this.#o.endpointFor(grant);
    return endpoint?.clientId !== undefined && endpoint.clientSecret !== undefined;
  }

  state(grant: Grant): OAuthState {
    return this.#o.store.get<OAuthState>(oauthStateId(grant.id)) ?? materialState(grant.material);
  }

  /** Does this grant hold refreshed tokens the store has not taken yet? */
  hasPendingSave(grantId: string): boolean {
    return this.#pending.has(grantId);
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

  /**
   * Before the process stops: tries once more to save every refreshed state a failed write left in
   * memory (it holds the only valid refresh token), for up to `waitMs`. Returns the grants lost.
   */
  settlePending(waitMs: number): Promise<string[]> {
    return this.#pending.settleAll(this.#now() + waitMs);
  }

  /** `keyway refresh ID`: refresh now, whatever the expiry. */
  async refreshNow(grant: Grant): Promise<AccessToken> {
    try {
      return await this.#singleFlight(grant, this.state(grant).accessToken, true);
    } catch (err) {
      // The caller may be a process about to exit: it must not leave with the only valid refresh token.
      const pending = this.#pending.get(grant.id);
      if (!pending) throw err;
      const outcome = await this.#pending.settle(grant.id, this.#now() + SETTLE_WAIT_MS);
      if (outcome === 'saved' && pending.next.accessToken) return { token: pending.next.accessToken, refreshed: true };
      throw outcome === 'failed' ? pendingSaveError(grant, pending.lastError) : supersededError(grant);
    }
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
    const pending = this.#pending.get(grant.id);
    if (pending) return this.#fromPending(grant, pending, staleToken, force);
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
        hint: "set the grant's provider to a preset or a provider in the config",
      });
    }
    let release: ReleaseRefreshLock | undefined;
    try {
      const waitMs = this.#o.timeoutMs + 5_000;
      // The store's own lock where it has one (PostgreSQL: across machines), else a file per grant.
      release = this.#o.store.acquireRefreshLock
        ? await this.#o.store.acquireRefreshLock(grant.id, waitMs)
        : await acquireRefreshLock(join(this.#o.lockDir), grant.id, waitMs);
      const result = await this.#refreshLocked(grant, endpoint, staleToken, force, release);
      this.#failures.delete(grant.id);
      return result;
    } catch (err) {
      if (err instanceof ProxyError && err.code === 'grant_needs_reconnect') throw err;
      const held = this.#pending.get(grant.id);
      if (held) return this.#stillValidOr(grant, force, pendingSaveError(grant, held.lastError));
      if (err instanceof KeywayError && err.code === 'store_unavailable') {
        // The store's database, not the provider, failed (no token call was made): no backoff, so
        // the first request after the database returns refreshes. A still-valid token is still sent.
        const down = new ProxyError('token_refresh_failed', `grant "${grant.id}" cannot be refreshed while the store's database is unavailable`, {
          grant: grant.id,
          cause: err,
          hint: "keyway refreshes on the next request once the database is back; /readyz shows the store's state",
        });
        return this.#stillValidOr(grant, force, down);
      }
      const error =
        err instanceof ProxyError
          ? err
          : new ProxyError('token_refresh_failed', err instanceof TokenEndpointError ? err.message : `refresh of grant "${grant.id}" failed`, {
              grant: grant.id,
              cause: err,
              hint: "keyway retries with backoff; check the provider's status",
            });
      const count = (failure?.count ?? 0) + 1;
      this.#failures.set(grant.id, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      this.#o.logger?.warn({ grant: grant.id, failures: count }, 'token refresh failed');
      return this.#stillValidOr(grant, force, error);
    } finally {
      // A pending save owns the lock until it is settled: other processes must not refresh meanwhile.
      if (release && !this.#pending.has(grant.id)) await release();
    }
  }

  /** A stored token not expired yet is still good to send when no refresh could be had; otherwise `error`. */
  #stillValidOr(grant: Grant, force: boolean, error: ProxyError): AccessToken {
    const state = this.state(grant);
    if (!force && state.accessToken && this.#notExpired(state)) return { token: state.accessToken, refreshed: false };
    throw error;
  }

  /**
   * A refreshed state waits for its save: retry the save if one is due (or join the one running),
   * and hand out its token only once saved. Never a token call while it waits.
   */
  async #fromPending(grant: Grant, pending: PendingState, staleToken: string | undefined, force: boolean): Promise<AccessToken> {
    const outcome = this.#pending.ready(grant.id) ? await this.#pending.attempt(grant.id) : 'failed';
    if (outcome === 'failed') return this.#stillValidOr(grant, force, pendingSaveError(grant, pending.lastError));
    const next = pending.next;
    if (outcome === 'saved' && next.accessToken && this.#fresh(next)) return { token: next.accessToken, refreshed: true };
    // Saved but already near expiry, or superseded by a newer secret: the usual path, which re-reads the store.
    return this.#refresh(grant, staleToken, force);
  }

  async #refreshLocked(
    grant: Grant,
    endpoint: TokenEndpoint,
    staleToken: string | undefined,
    force: boolean,
    release: ReleaseRefreshLock,
  ): Promise<AccessToken> {
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
    const write = () => this.#writeRefreshed(grant, current, next);
    let outcome: WriteOutcome;
    try {
      outcome = await write();
    } catch (err) {
      // The provider has spent the old refresh token: this state is the grant's only future. Keep it
      // (and the refresh lock) until a save lands; the request fails meanwhile, it is not handed out.
      const pending = this.#pending.hold(grant.id, { next, write, release, lastError: err });
      this.#o.logger?.warn({ grant: grant.id, reason: reasonOf(err) }, 'token refreshed but not saved; kept in memory, retrying the save');
      throw pendingSaveError(grant, pending.lastError);
    }
    if (outcome === 'superseded') {
      this.#o.logger?.warn({ grant: grant.id }, 'refreshed token dropped: the store now holds a newer secret or status for this grant');
      throw supersededError(grant);
    }
    this.#o.logger?.info({ grant: grant.id, rotated: tokens.refreshToken !== undefined }, 'token refreshed');
    this.#o.observer?.tokenRefreshed(grant.id);
    return { token: next.accessToken!, refreshed: true };
  }

  /**
   * Writes a refreshed state, unless the store (re-read under its lock) no longer holds the state it
   * was refreshed from: a new secret, a reconnect or a revoke written meanwhile wins over it.
   */
  #writeRefreshed(grant: Grant, from: OAuthState, next: OAuthState): Promise<WriteOutcome> {
    return this.#o.store.update((draft): WriteOutcome => {
      const live = this.#stateIn(draft, grant);
      // Already there: an earlier attempt renamed the file into place and failed after (the directory fsync).
      if (live.refreshedAt === next.refreshedAt && live.refreshToken === next.refreshToken && live.accessToken === next.accessToken) return 'saved';
      if (live.refreshToken !== from.refreshToken || (live.status ?? 'active') !== (from.status ?? 'active')) return 'superseded';
      draft.set(oauthStateId(grant.id), next);
      return 'saved';
    });
  }

  /** state(), as the draft (the file just re-read under the store lock) has it. */
  #stateIn(draft: StoreDraft, grant: Grant): OAuthState {
    const live = draft.get<OAuthState>(oauthStateId(grant.id));
    if (live) return live;
    // A grant from the config takes its secret from there; one made with the CLI, from its record.
    return materialState(grant.source === 'store' ? draft.get<StoredGrant>(grantRecordId(grant.id))?.secret : grant.material);
  }

  #callEndpoint(grant: Grant, endpoint: TokenEndpoint, current: OAuthState): Promise<TokenSet> {
    const options = { timeoutMs: this.#o.timeoutMs, dispatcher: this.#o.dispatcher, now: this.#now };
    if (grant.type === 'client_credentials') {
      const m = grant.material as ClientCredentialsMaterial | undefined;
      const params: Record<string, string> = { grant_type: 'client_credentials' };
      if (m?.scopes?.length) params['scope'] = m.scopes.join(' ');
      return this.#timed(grant, () => requestToken(endpoint, params, options));
    }
    if (!current.refreshToken) {
      throw new TokenEndpointError('invalid_grant', `grant "${grant.id}" has no refresh token`);
    }
    const refreshToken = current.refreshToken;
    return this.#timed(grant, () => requestToken(endpoint, { grant_type: 'refresh_token', refresh_token: refreshToken }, options));
  }

  /** One call to the token endpoint, told to the observer with its latency and result. */
  async #timed(grant: Grant, call: () => Promise<TokenSet>): Promise<TokenSet> {
    const observer = this.#o.observer;
    if (!observer) return call();
    const started = performance.now();
    let result: TokenRequestResult = 'error';
    try {
      const tokens = await call();
      result = 'ok';
      return tokens;
    } catch (err) {
      if (err instanceof TokenEndpointError) result = err.kind;
      throw err;
    } finally {
      observer.tokenRequest(grant.id, (performance.now() - started) / 1000, result);
    }
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

/** The tokens the user provided, as a state (a grant with no refresh yet). */
function materialState(m: SecretMaterial | undefined): OAuthState {
  const o = oauthMaterialOf(m);
  if (!o) return {};
  return { accessToken: o.accessToken, refreshToken: 'refreshToken' in o ? o.refreshToken : undefined, expiresAt: o.expiresAt, scopes: o.scopes };
}
