import type { Logger } from 'pino';
import { ProxyError } from '../../errors/index.ts';
import type { Dispatcher } from '../../net/undici.ts';
import { DEFAULT_RENEW_FLOOR_MS, type OAuthGrantRef } from '../grant-ref.ts';
import type { ClientCredentialsMaterial } from '../material.ts';
import type { OAuthState } from './oauth-state.ts';
import { assertUsable, markNeedsReconnect, oauthStateOf, writeRefreshed } from './oauth-grant-state.ts';
import { type PendingSaves, reasonOf, type WriteOutcome } from './pending-saves.ts';
import { type Renewal, renewFloorOf } from './renewal.ts';
import { requestToken, TokenEndpointError, type TokenEndpoint, type TokenSet } from './token-endpoint.ts';
import { needsReconnect, pendingSaveError, supersededError } from './token-errors.ts';
import type { TokenStore } from './token-store.ts';

// An OAuth grant's refresh as a Renewal (renewer.ts runs it): a refresh_token (or
// client_credentials) call to the grant's token endpoint. What sets it apart from a minted token:
// the refresh token rotates, so the new state is persisted before its access token is used and,
// if the store will not take it, kept with the refresh lock until it does (PendingSaves); a
// refusal (invalid_grant) is looked at again, since another process's rotation looks the same; a
// token is good until it expires; and every request that waited on a refresh is audited refreshed.

export interface OAuthRenewalContext {
  store: TokenStore;
  pending: PendingSaves;
  /** The token endpoint and client for a grant, or undefined when its provider is unknown. */
  endpointFor(grant: OAuthGrantRef): TokenEndpoint | undefined;
  skewMs: number;
  timeoutMs: number;
  dispatcher: Dispatcher | undefined;
  logger: Logger | undefined;
  now: () => number;
}

/** Valid beyond the skew (a token with no expiry always is). */
export function freshToken(state: OAuthState, skewMs: number, now: number): boolean {
  return state.expiresAt === undefined || state.expiresAt - skewMs > now;
}

/** An oauth2 grant with no refresh token: refused like a spent one, though no call was made (so none is counted). */
class NoRefreshToken extends TokenEndpointError {}

export function oauthRenewal(grant: OAuthGrantRef, c: OAuthRenewalContext): Renewal<OAuthState> {
  const fresh = (state: OAuthState) => Boolean(state.accessToken) && freshToken(state, c.skewMs, c.now());
  const current = () => oauthStateOf(c.store, grant);
  // Looked up when a refresh starts, not on every request: a config provider's client secret is read then.
  let endpoint: TokenEndpoint | undefined;
  // Whether the provider answered with a new refresh token (for the log line).
  let rotated = false;
  return {
    grantId: grant.id,
    stored: current,
    isFor: () => true,
    // No access token is as good as expired; none with no expiry is good until the upstream refuses it.
    expiresAt: (state) => (state.accessToken ? (state.expiresAt ?? Number.POSITIVE_INFINITY) : 0),
    // Unused: a forced refresh is met by a fresh token other than the one it was asked about (TokenManager).
    issuedAt: (state) => state.refreshedAt ?? '',
    renewBeforeMs: c.skewMs,
    renewFloor: renewFloorOf<OAuthState>(grant.renewFloorMs ?? DEFAULT_RENEW_FLOOR_MS),
    usableMarginMs: 0,
    joinersShareRenewed: true,
    forcedBacksOff: true,
    ready: () => {
      endpoint = c.endpointFor(grant);
      if (!endpoint) {
        throw new ProxyError('token_refresh_failed', `grant "${grant.id}" has no known provider to refresh with`, {
          grant: grant.id,
          hint: "set the grant's provider to a preset or a provider in the config",
        });
      }
    },
    pending: async () => {
      // A refreshed state waits for its save: retry the save if one is due (or join the one running),
      // and hand out its token only once saved. Never a token call while it waits.
      const held = c.pending.get(grant.id);
      if (!held) return undefined;
      const outcome = c.pending.ready(grant.id) ? await c.pending.attempt(grant.id) : 'failed';
      if (outcome === 'failed') throw pendingSaveError(grant, held.lastError);
      if (outcome === 'saved' && fresh(held.next)) return { state: held.next, renewed: true };
      // Saved but already near expiry, or superseded by a newer secret: the usual path, which re-reads the store.
      return undefined;
    },
    check: (state) => assertUsable(grant, state),
    final: (err) => err instanceof ProxyError && err.code === 'grant_needs_reconnect',
    fetch: async (_now, from) => {
      const before = from ?? current();
      if (!endpoint) throw new Error('no token endpoint'); // ready() found one
      const tokens = await callEndpoint(grant, endpoint, before, c);
      rotated = tokens.refreshToken !== undefined;
      return {
        accessToken: tokens.accessToken,
        // No new refresh token in the answer: the old one stays valid (RFC 6749 6).
        refreshToken: tokens.refreshToken ?? before.refreshToken,
        expiresAt: tokens.expiresAt,
        scopes: tokens.scopes ?? before.scopes,
        refreshedAt: new Date(c.now()).toISOString(),
        status: 'active',
      };
    },
    recover: async (err, from) => {
      if (!(err instanceof TokenEndpointError) || err.kind !== 'invalid_grant') return undefined;
      // A rotation by another process that we did not see yet looks the same as a dead grant:
      // look again (update() re-reads the file under the store lock) before giving up on it.
      await c.store.update(() => undefined);
      const again = current();
      if (again.refreshToken !== from?.refreshToken && fresh(again)) return again;
      await markNeedsReconnect(c.store, grant);
      throw needsReconnect(grant, `the provider refused grant "${grant.id}"'s refresh token (invalid_grant)`);
    },
    requestResult: (err) => (err instanceof NoRefreshToken ? undefined : err instanceof TokenEndpointError ? err.kind : 'error'),
    persist: async (next, from, keepLock) => {
      // Persist first: a crash after this keeps the rotated refresh token; the access token is
      // handed out only once it is on disk.
      const write = () => writeRefreshed(c.store, grant, from ?? current(), next);
      let outcome: WriteOutcome;
      try {
        outcome = await write();
      } catch (err) {
        // The provider has spent the old refresh token: this state is the grant's only future. Keep it
        // (and the refresh lock) until a save lands; the request fails meanwhile, it is not handed out.
        const pending = c.pending.hold(grant.id, { next, write, release: keepLock(), lastError: err });
        c.logger?.warn({ grant: grant.id, reason: reasonOf(err) }, 'token refreshed but not saved; kept in memory, retrying the save');
        throw pendingSaveError(grant, pending.lastError);
      }
      if (outcome === 'superseded') {
        c.logger?.warn({ grant: grant.id }, 'refreshed token dropped: the store now holds a newer secret or status for this grant');
        throw supersededError(grant);
      }
    },
    failed: (err) =>
      err instanceof ProxyError
        ? err
        : new ProxyError('token_refresh_failed', err instanceof TokenEndpointError ? err.message : `refresh of grant "${grant.id}" failed`, {
            grant: grant.id,
            cause: err,
            hint: "keyway retries with backoff; check the provider's status",
          }),
    storeDown: (err) =>
      // The store's database, not the provider, failed (no token call was made). A still-valid token is still sent.
      new ProxyError('token_refresh_failed', `grant "${grant.id}" cannot be refreshed while the store's database is unavailable`, {
        grant: grant.id,
        cause: err,
        hint: "keyway refreshes on the next request once the database is back; /readyz shows the store's state",
      }),
    log: { renewed: 'token refreshed', failed: 'token refresh failed', fields: () => ({ rotated }) },
  };
}

function callEndpoint(grant: OAuthGrantRef, endpoint: TokenEndpoint, current: OAuthState, c: OAuthRenewalContext): Promise<TokenSet> {
  const options = { timeoutMs: c.timeoutMs, dispatcher: c.dispatcher, now: c.now };
  if (grant.type === 'client_credentials') {
    const m = grant.material as ClientCredentialsMaterial | undefined;
    const params: Record<string, string> = { grant_type: 'client_credentials' };
    if (m?.scopes?.length) params['scope'] = m.scopes.join(' ');
    return requestToken(endpoint, params, options);
  }
  if (!current.refreshToken) throw new NoRefreshToken('invalid_grant', `grant "${grant.id}" has no refresh token`);
  return requestToken(endpoint, { grant_type: 'refresh_token', refresh_token: current.refreshToken }, options);
}
