import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Logger } from 'pino';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import type { Dispatcher } from '../../net/undici.ts';
import type { Grant } from '../grants.ts';
import type { GoogleServiceAccountMaterial } from '../material.ts';
import type { TokenObserver, TokenStore } from './oauth-tokens.ts';
import { acquireRefreshLock, type ReleaseRefreshLock } from './refresh-lock.ts';
import { requestToken, safeOrigin, TokenEndpointError } from './token-endpoint.ts';

// A Google service account's access tokens (type google_service_account): keyway signs an RS256
// assertion with the account's key and exchanges it at the key's token_uri (the JWT bearer grant,
// RFC 7523: what Google's own libraries do), keeps the token sealed in the store
// (`google-token:<grant>`), and mints the next one shortly before it expires: once per expiry,
// in one process (single flight), across processes (the grant's refresh lock) and across replicas
// (the store's lock on PostgreSQL), as OAuth refreshes and AWS roles do. A token is never sent
// past its expiry; the mint failing is 502 token_refresh_failed, with backoff.

export interface GoogleTokenState {
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
  /** What it was minted for: a token for another account, scope set or subject is not used. */
  clientEmail: string;
  scopes: string;
  subject?: string | undefined;
  mintedAt: string;
}

export const GOOGLE_TOKEN_PREFIX = 'google-token:';
export const googleTokenId = (grantId: string): string => `${GOOGLE_TOKEN_PREFIX}${grantId}`;

export interface GoogleMintOptions {
  store: TokenStore;
  lockDir: string;
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  logger?: Logger | undefined;
  now?: (() => number) | undefined;
  observer?: TokenObserver | undefined;
}

/** What a grant mints with: its key and its config (scopes, subject). */
export interface GoogleMint {
  key: GoogleServiceAccountMaterial;
  scopes: readonly string[];
  subject: string | undefined;
}

// Google's tokens live an hour; the next is minted 5 minutes before, as its libraries do.
const MINT_BEFORE_MS = 5 * 60_000;
const ASSERTION_LIFETIME_S = 3600;
const MAX_BACKOFF_MS = 60_000;

export class GoogleServiceAccountTokens {
  readonly #o: GoogleMintOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<{ token: string; refreshed: boolean }>>();
  readonly #failures = new Map<string, { count: number; nextAttemptAt: number; error: ProxyError }>();

  constructor(options: GoogleMintOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The token held for this grant and what it mints for, expired or not (listings read it). */
  state(grant: Grant, mint: GoogleMint): GoogleTokenState | undefined {
    const held = this.#o.store.get<GoogleTokenState>(googleTokenId(grant.id));
    return held !== undefined && mintedFor(held, mint) ? held : undefined;
  }

  /** A token valid beyond the margin: the one held, else a new one (joining a mint in flight). */
  async token(grant: Grant, mint: GoogleMint): Promise<{ token: string; refreshed: boolean }> {
    const held = this.state(grant, mint);
    if (held && held.expiresAt - MINT_BEFORE_MS > this.#now()) return { token: held.accessToken, refreshed: false };
    const running = this.#inFlight.get(grant.id);
    // Only the caller that started the mint is told `refreshed` (its audit line paid for it).
    if (running) return running.then((r) => ({ ...r, refreshed: false }));
    const attempt = this.#mint(grant, mint).finally(() => this.#inFlight.delete(grant.id));
    this.#inFlight.set(grant.id, attempt);
    return attempt;
  }

  async #mint(grant: Grant, mint: GoogleMint): Promise<{ token: string; refreshed: boolean }> {
    const failure = this.#failures.get(grant.id);
    if (failure && this.#now() < failure.nextAttemptAt) return this.#stillValidOr(grant, mint, failure.error);
    let release: ReleaseRefreshLock | undefined;
    try {
      const waitMs = this.#o.timeoutMs + 5_000;
      release = this.#o.store.acquireRefreshLock
        ? await this.#o.store.acquireRefreshLock(grant.id, waitMs)
        : await acquireRefreshLock(this.#o.lockDir, grant.id, waitMs);
      // Another process may have minted while this one waited for the lock: update() re-reads.
      await this.#o.store.update(() => undefined);
      const held = this.state(grant, mint);
      if (held && held.expiresAt - MINT_BEFORE_MS > this.#now()) return { token: held.accessToken, refreshed: false };
      const next = await this.#exchange(grant, mint);
      await this.#o.store.update((draft) => draft.set(googleTokenId(grant.id), next));
      this.#failures.delete(grant.id);
      this.#o.observer?.tokenRefreshed(grant.id);
      this.#o.logger?.info({ grant: grant.id, expires_at: new Date(next.expiresAt).toISOString() }, 'service account token minted');
      return { token: next.accessToken, refreshed: true };
    } catch (err) {
      const error =
        err instanceof ProxyError
          ? err
          : new ProxyError(
              'token_refresh_failed',
              err instanceof KeywayError && err.code === 'store_unavailable'
                ? `grant "${grant.id}" cannot mint a token while the store's database is unavailable`
                : `grant "${grant.id}" could not get a token from ${safeOrigin(mint.key.tokenUri)}: ${err instanceof TokenEndpointError ? err.message : 'the mint failed'}`,
              { grant: grant.id, cause: err, hint: "keyway retries with backoff; check the service account's key, its scopes and subject" },
            );
      const count = (failure?.count ?? 0) + 1;
      this.#failures.set(grant.id, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      this.#o.logger?.warn({ grant: grant.id, failures: count, reason: error.message }, 'service account token mint failed');
      return this.#stillValidOr(grant, mint, error);
    } finally {
      if (release) await release();
    }
  }

  /** With the mint failing: the token held while it is still valid for a minute, else the error. */
  #stillValidOr(grant: Grant, mint: GoogleMint, error: ProxyError): { token: string; refreshed: boolean } {
    const held = this.state(grant, mint);
    if (held && held.expiresAt - 60_000 > this.#now()) return { token: held.accessToken, refreshed: false };
    throw error;
  }

  /** The JWT bearer grant: one signed assertion, one token request. */
  async #exchange(grant: Grant, mint: GoogleMint): Promise<GoogleTokenState> {
    const now = this.#now();
    const iat = Math.floor(now / 1000);
    const scopes = mint.scopes.join(' ');
    const assertion = new SignJWT({ scope: scopes })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(mint.key.privateKeyId ? { kid: mint.key.privateKeyId } : {}) })
      .setIssuer(mint.key.clientEmail)
      .setAudience(mint.key.tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_LIFETIME_S);
    // sub only for domain-wide delegation: the user the account acts as.
    if (mint.subject !== undefined) assertion.setSubject(mint.subject);
    const signed = await assertion.sign(createPrivateKey(mint.key.privateKey));
    const started = performance.now();
    let result: 'ok' | 'error' = 'error';
    try {
      const tokens = await requestToken(
        { tokenUrl: mint.key.tokenUri, clientId: undefined, clientSecret: undefined, clientAuth: 'body', bodyFormat: 'form', extraParams: {} },
        { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signed },
        { timeoutMs: this.#o.timeoutMs, dispatcher: this.#o.dispatcher, now: this.#now },
      );
      result = 'ok';
      const expiresAt = tokens.expiresAt ?? now + 3_600_000;
      if (expiresAt - 60_000 <= this.#now()) throw new TokenEndpointError('bad_response', 'the token endpoint answered with a token that expires at once');
      return {
        accessToken: tokens.accessToken,
        expiresAt,
        clientEmail: mint.key.clientEmail,
        scopes,
        subject: mint.subject,
        mintedAt: new Date(now).toISOString(),
      };
    } finally {
      this.#o.observer?.tokenRequest(grant.id, (performance.now() - started) / 1000, result);
    }
  }
}

function mintedFor(state: GoogleTokenState, mint: GoogleMint): boolean {
  return state.clientEmail === mint.key.clientEmail && state.scopes === mint.scopes.join(' ') && state.subject === mint.subject;
}
