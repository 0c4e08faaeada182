import type { Logger } from 'pino';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import type { Dispatcher } from '../../net/undici.ts';
import type { Grant } from '../grants.ts';
import type { TokenObserver, TokenStore } from './oauth-tokens.ts';
import { acquireRefreshLock, type ReleaseRefreshLock } from './refresh-lock.ts';
import { TokenEndpointError } from './token-endpoint.ts';

// Tokens keyway mints from a key the grant holds (a Google service account's assertion, a GitHub
// App's JWT): kept sealed in the store (`minted:<grant>`), minted again shortly before they
// expire, once: in one process (single flight), across processes (the grant's refresh lock) and
// across replicas (the store's lock on PostgreSQL), as OAuth refreshes and AWS roles are. A token
// is never sent past its expiry; a mint that fails is 502 token_refresh_failed, with backoff, and a
// token still valid for a minute is used meanwhile. What each kind mints is its Minter.

export interface MintedState {
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
  /** What it was minted for (the Minter's fingerprint): a token for another key or scope is not used. */
  mintedFor: string;
  mintedAt: string;
}

export const MINTED_PREFIX = 'minted:';
export const mintedStateId = (grantId: string): string => `${MINTED_PREFIX}${grantId}`;

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
  mint(spec: Spec, context: MintContext): Promise<{ accessToken: string; expiresAt: number }>;
  /** How long before expiry the next one is minted. */
  mintBeforeMs: number;
  /** The hint a failure carries. */
  hint: string;
}

export interface MintedOptions {
  store: TokenStore;
  lockDir: string;
  timeoutMs: number;
  dispatcher?: Dispatcher | undefined;
  logger?: Logger | undefined;
  now?: (() => number) | undefined;
  observer?: TokenObserver | undefined;
}

const STILL_USABLE_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

export class MintedTokens {
  readonly #o: MintedOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<{ token: string; refreshed: boolean }>>();
  readonly #failures = new Map<string, { count: number; nextAttemptAt: number; error: ProxyError }>();

  constructor(options: MintedOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The token held for this grant and what it mints for, expired or not. */
  state<S>(grant: Grant, minter: Minter<S>, spec: S): MintedState | undefined {
    const held = this.#o.store.get<MintedState>(mintedStateId(grant.id));
    return held !== undefined && held.mintedFor === minter.fingerprint(spec) ? held : undefined;
  }

  /** A token valid beyond the margin: the one held, else a new one (joining a mint in flight). */
  async token<S>(grant: Grant, minter: Minter<S>, spec: S): Promise<{ token: string; refreshed: boolean }> {
    const held = this.state(grant, minter, spec);
    if (held && held.expiresAt - minter.mintBeforeMs > this.#now()) return { token: held.accessToken, refreshed: false };
    const running = this.#inFlight.get(grant.id);
    // Only the caller that started the mint is told `refreshed` (its audit line paid for it).
    if (running) return running.then((r) => ({ ...r, refreshed: false }));
    const attempt = this.#mint(grant, minter, spec).finally(() => this.#inFlight.delete(grant.id));
    this.#inFlight.set(grant.id, attempt);
    return attempt;
  }

  /**
   * A new token now, whatever the held one's expiry (keyway refresh, POST /api/grants/{id}/refresh),
   * under the same single flight and lock as the proxy's: a mint already in flight is joined. A
   * failure is thrown (token_refresh_failed) and starts no backoff for the proxy's requests.
   */
  mintNow<S>(grant: Grant, minter: Minter<S>, spec: S): Promise<{ token: string; refreshed: boolean }> {
    const running = this.#inFlight.get(grant.id);
    if (running) return running;
    const attempt = this.#mint(grant, minter, spec, new Date(this.#now()).toISOString()).finally(() => this.#inFlight.delete(grant.id));
    this.#inFlight.set(grant.id, attempt);
    return attempt;
  }

  /**
   * After the upstream refused `used` (a 401: the provider revoked it, say): a new token, once for
   * all the requests refused with it: the first mints, the others join it or find the new one held.
   */
  async afterRejection<S>(grant: Grant, minter: Minter<S>, spec: S, used: string): Promise<{ token: string; refreshed: boolean }> {
    const held = this.state(grant, minter, spec);
    if (held && held.accessToken !== used && held.expiresAt - STILL_USABLE_MS > this.#now()) return { token: held.accessToken, refreshed: false };
    const running = this.#inFlight.get(grant.id);
    if (running) return running.then((r) => ({ ...r, refreshed: false }));
    return this.mintNow(grant, minter, spec);
  }

  /** `forcedSince`: a forced mint (mintNow), and when it was asked for: a token minted since then by another process will do. */
  async #mint<S>(grant: Grant, minter: Minter<S>, spec: S, forcedSince?: string): Promise<{ token: string; refreshed: boolean }> {
    const failure = this.#failures.get(grant.id);
    if (forcedSince === undefined && failure && this.#now() < failure.nextAttemptAt) return this.#stillValidOr(grant, minter, spec, failure.error);
    let release: ReleaseRefreshLock | undefined;
    try {
      const waitMs = this.#o.timeoutMs + 5_000;
      release = this.#o.store.acquireRefreshLock
        ? await this.#o.store.acquireRefreshLock(grant.id, waitMs)
        : await acquireRefreshLock(this.#o.lockDir, grant.id, waitMs);
      // Another process may have minted while this one waited for the lock: update() re-reads.
      await this.#o.store.update(() => undefined);
      const held = this.state(grant, minter, spec);
      const good = forcedSince === undefined ? held && held.expiresAt - minter.mintBeforeMs > this.#now() : held && held.mintedAt > forcedSince;
      if (held && good) return { token: held.accessToken, refreshed: false };
      const next = await this.#timed(grant, minter, spec);
      await this.#o.store.update((draft) => draft.set(mintedStateId(grant.id), next));
      this.#failures.delete(grant.id);
      this.#o.observer?.tokenRefreshed(grant.id);
      this.#o.logger?.info({ grant: grant.id, expires_at: new Date(next.expiresAt).toISOString() }, 'token minted');
      return { token: next.accessToken, refreshed: true };
    } catch (err) {
      const error =
        err instanceof ProxyError
          ? err
          : new ProxyError(
              'token_refresh_failed',
              err instanceof KeywayError && err.code === 'store_unavailable'
                ? `grant "${grant.id}" cannot mint a token while the store's database is unavailable`
                : `grant "${grant.id}" could not get ${minter.describe(spec)}: ${err instanceof TokenEndpointError ? err.message : 'the mint failed'}`,
              { grant: grant.id, cause: err, hint: minter.hint },
            );
      if (forcedSince !== undefined) {
        this.#o.logger?.warn({ grant: grant.id, reason: error.message }, 'token mint asked for now failed');
        throw error;
      }
      const count = (failure?.count ?? 0) + 1;
      this.#failures.set(grant.id, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      this.#o.logger?.warn({ grant: grant.id, failures: count, reason: error.message }, 'token mint failed');
      return this.#stillValidOr(grant, minter, spec, error);
    } finally {
      if (release) await release();
    }
  }

  /** With the mint failing: the token held while it is still valid for a minute, else the error. */
  #stillValidOr<S>(grant: Grant, minter: Minter<S>, spec: S, error: ProxyError): { token: string; refreshed: boolean } {
    const held = this.state(grant, minter, spec);
    if (held && held.expiresAt - STILL_USABLE_MS > this.#now()) return { token: held.accessToken, refreshed: false };
    throw error;
  }

  /** One mint, timed and counted like a token endpoint call. */
  async #timed<S>(grant: Grant, minter: Minter<S>, spec: S): Promise<MintedState> {
    const now = this.#now();
    const started = performance.now();
    let result: 'ok' | 'error' = 'error';
    try {
      const minted = await minter.mint(spec, { now, timeoutMs: this.#o.timeoutMs, dispatcher: this.#o.dispatcher });
      if (minted.expiresAt - STILL_USABLE_MS <= this.#now()) throw new TokenEndpointError('bad_response', 'the answer holds a token that expires at once');
      result = 'ok';
      return { accessToken: minted.accessToken, expiresAt: minted.expiresAt, mintedFor: minter.fingerprint(spec), mintedAt: new Date(now).toISOString() };
    } finally {
      this.#o.observer?.tokenRequest(grant.id, (performance.now() - started) / 1000, result);
    }
  }
}
