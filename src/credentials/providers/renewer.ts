import type { Logger } from 'pino';
import { KeywayError, type ProxyError } from '../../errors/index.ts';
import type { StoreDraft } from '../store/index.ts';
import type { TokenObserver, TokenStore } from './oauth-tokens.ts';
import { acquireRefreshLock, type ReleaseRefreshLock } from './refresh-lock.ts';

// The lifecycle every credential keyway fetches or mints for itself shares (a GitHub App's or a
// service account's token, an AWS role's credentials): the request path reads what is held; shortly
// before it expires one caller per grant renews it (single flight in this process, the grant's
// refresh lock across processes, the store's lock across replicas), re-reads the store under that
// lock first (another process may have renewed), saves the new state sealed in the store, and backs
// off after a failure while a state still usable for a minute is handed out. An expired one never
// is. What differs per kind (what is fetched, where it lives, how early) is its Renewal.

/** One kind's side of a renewal, for one grant. */
export interface Renewal<State> {
  readonly grantId: string;
  /** The state the store holds for the grant, expired or not. */
  stored(): State | undefined;
  /** Whether a state is for what this renewal is for now: one for another key, role or scope is not used. */
  isFor(state: State): boolean;
  expiresAt(state: State): number;
  /** When it was fetched (ISO 8601): a renewal asked for at a time is met by one fetched since. */
  issuedAt(state: State): string;
  /** How long before expiry the next one is fetched. */
  readonly renewBeforeMs: number;
  /** The call that gets a new state (a token endpoint, STS), at the token clock's `now`. */
  fetch(now: number): Promise<State>;
  /** Puts the new state in the store (under its lock). */
  save(draft: StoreDraft, state: State): void;
  /** What a failed fetch (or save) is to the agent: token_refresh_failed with the kind's words. */
  failed(err: unknown): ProxyError;
  /** The same, when the store's database is down (no call was made, so no backoff either). */
  storeDown(err: KeywayError): ProxyError;
  /** A new state the store would not take: used from memory meanwhile (`memory`), or a failure (`fail`). */
  readonly unsaved: 'memory' | 'fail';
  /** The log lines' words: `token minted`, `role assumed`; fields for the success line (never a secret). */
  readonly log: { renewed: string; failed: string; fields(state: State): Record<string, unknown> };
}

export interface Renewed<State> {
  state: State;
  /** A fetch happened to produce it, for the caller that paid for it (its audit line says `refreshed`). */
  renewed: boolean;
}

export interface RenewerOptions {
  store: TokenStore;
  /** Where the per-grant refresh locks live (data/locks), where the store has no lock of its own. */
  lockDir: string;
  timeoutMs: number;
  logger?: Logger | undefined;
  /** The token clock (epoch ms): expiry, renewal and backoff; tests move it instead of sleeping. */
  now?: (() => number) | undefined;
  /** /metrics: each fetch (keyway_token_requests_total) and each state saved (keyway_token_refreshes_total). */
  observer?: TokenObserver | undefined;
}

interface Failure {
  count: number;
  nextAttemptAt: number;
  error: ProxyError;
}

/** With renewals failing, a state this far from expiry is still handed out; closer, a request could outlive it. */
export const STILL_USABLE_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

export class Renewer<State> {
  readonly #o: RenewerOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<Renewed<State>>>();
  readonly #failures = new Map<string, Failure>();
  // States fetched that the store would not take (Renewal.unsaved 'memory'): used until it does.
  readonly #unsaved = new Map<string, State>();

  constructor(options: RenewerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The newest state held for the grant (the store's, or one it would not take), expired or not. */
  held(renewal: Renewal<State>): State | undefined {
    const candidates = [renewal.stored(), this.#unsaved.get(renewal.grantId)].filter((s): s is State => s !== undefined && renewal.isFor(s));
    return candidates.sort((a, b) => renewal.expiresAt(b) - renewal.expiresAt(a))[0];
  }

  /** A state valid beyond the renewal margin: the one held, else a new one (joining a renewal in flight). */
  get(renewal: Renewal<State>): Promise<Renewed<State>> | Renewed<State> {
    const held = this.held(renewal);
    if (held !== undefined && this.#fresh(renewal, held)) return { state: held, renewed: false };
    return this.#single(renewal, () => this.#renew(renewal, undefined));
  }

  /**
   * A new state now, whatever the held one's expiry (`keyway refresh`, POST /api/grants/{id}/refresh),
   * under the same single flight and lock: a renewal in flight is joined, and one another process
   * made since this was asked for will do. Past any backoff; a failure is thrown and starts none.
   */
  renewNow(renewal: Renewal<State>): Promise<Renewed<State>> {
    const askedAt = new Date(this.#now()).toISOString();
    const running = this.#inFlight.get(renewal.grantId);
    if (running) return running;
    return this.#start(renewal, () => this.#renew(renewal, askedAt));
  }

  /**
   * After the upstream refused a state (a 401: the provider revoked the token, say): a new one, once
   * for all the requests refused with it. `wasUsed` tells the refused state from a newer one.
   */
  afterRejection(renewal: Renewal<State>, wasUsed: (state: State) => boolean): Promise<Renewed<State>> | Renewed<State> {
    const held = this.held(renewal);
    if (held !== undefined && !wasUsed(held) && renewal.expiresAt(held) - STILL_USABLE_MS > this.#now()) return { state: held, renewed: false };
    const running = this.#inFlight.get(renewal.grantId);
    if (running) return running.then((r) => ({ ...r, renewed: false }));
    return this.renewNow(renewal);
  }

  #fresh(renewal: Renewal<State>, state: State): boolean {
    return renewal.expiresAt(state) - renewal.renewBeforeMs > this.#now();
  }

  /** One renewal per grant at a time: callers that come while one runs share its answer, as not renewed by them. */
  #single(renewal: Renewal<State>, start: () => Promise<Renewed<State>>): Promise<Renewed<State>> {
    const running = this.#inFlight.get(renewal.grantId);
    if (running) return running.then((r) => ({ ...r, renewed: false }));
    return this.#start(renewal, start);
  }

  #start(renewal: Renewal<State>, start: () => Promise<Renewed<State>>): Promise<Renewed<State>> {
    const attempt = start().finally(() => this.#inFlight.delete(renewal.grantId));
    this.#inFlight.set(renewal.grantId, attempt);
    return attempt;
  }

  /** With no renewal to be had: a state still usable for a minute, else `error`. */
  #stillUsableOr(renewal: Renewal<State>, error: ProxyError): Renewed<State> {
    const held = this.held(renewal);
    if (held !== undefined && renewal.expiresAt(held) - STILL_USABLE_MS > this.#now()) return { state: held, renewed: false };
    throw error;
  }

  /** `askedAt`: a renewal asked for now (renewNow), and when: it throws rather than fall back, and skips the backoff. */
  async #renew(renewal: Renewal<State>, askedAt: string | undefined): Promise<Renewed<State>> {
    const { grantId } = renewal;
    const failure = this.#failures.get(grantId);
    if (askedAt === undefined && failure && this.#now() < failure.nextAttemptAt) return this.#stillUsableOr(renewal, failure.error);
    let release: ReleaseRefreshLock | undefined;
    try {
      const waitMs = this.#o.timeoutMs + 5_000;
      // The store's own lock where it has one (PostgreSQL: across machines), else a file per grant:
      // the very lock an OAuth grant's refresh takes.
      release = this.#o.store.acquireRefreshLock
        ? await this.#o.store.acquireRefreshLock(grantId, waitMs)
        : await acquireRefreshLock(this.#o.lockDir, grantId, waitMs);
      const result = await this.#renewLocked(renewal, askedAt);
      this.#failures.delete(grantId);
      return result;
    } catch (err) {
      if (err instanceof KeywayError && err.code === 'store_unavailable') {
        // The database failed, not the provider (no call was made): no backoff, the next request tries again.
        const down = renewal.storeDown(err);
        if (askedAt !== undefined) throw down;
        return this.#stillUsableOr(renewal, down);
      }
      const error = renewal.failed(err);
      this.#o.logger?.warn({ grant: grantId, forced: askedAt !== undefined, reason: error.message }, renewal.log.failed);
      // A renewal a person asked for fails to them; the request path keeps its own backoff.
      if (askedAt !== undefined) throw error;
      const count = (failure?.count ?? 0) + 1;
      this.#failures.set(grantId, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      return this.#stillUsableOr(renewal, error);
    } finally {
      if (release) await release();
    }
  }

  async #renewLocked(renewal: Renewal<State>, askedAt: string | undefined): Promise<Renewed<State>> {
    // Another process may have renewed while this one waited for the lock: update() re-reads the store.
    await this.#o.store.update(() => undefined);
    const held = this.held(renewal);
    const good = held !== undefined && (askedAt === undefined ? this.#fresh(renewal, held) : renewal.issuedAt(held) > askedAt);
    if (held !== undefined && good) return { state: held, renewed: false };
    const next = await this.#timed(renewal);
    try {
      await this.#o.store.update((draft) => renewal.save(draft, next));
      this.#unsaved.delete(renewal.grantId);
    } catch (err) {
      if (renewal.unsaved === 'fail') throw err;
      // Unlike a rotated refresh token, this state is not the grant's only future (the stored key
      // gets new ones any time): used from memory; other processes, not seeing it, may fetch once more.
      this.#unsaved.set(renewal.grantId, next);
      this.#o.logger?.warn({ grant: renewal.grantId, reason: (err as Error).message }, `${renewal.log.renewed}, but not saved; used from memory`);
    }
    this.#o.logger?.info(
      { grant: renewal.grantId, ...renewal.log.fields(next), expires_at: new Date(renewal.expiresAt(next)).toISOString() },
      renewal.log.renewed,
    );
    this.#o.observer?.tokenRefreshed(renewal.grantId);
    return { state: next, renewed: true };
  }

  /** One fetch, timed and counted like a token endpoint call; a state that expires at once is refused. */
  async #timed(renewal: Renewal<State>): Promise<State> {
    const started = performance.now();
    let result: 'ok' | 'error' = 'error';
    try {
      const next = await renewal.fetch(this.#now());
      if (renewal.expiresAt(next) - STILL_USABLE_MS <= this.#now()) throw new RenewalTooShort(new Date(renewal.expiresAt(next)).toISOString());
      result = 'ok';
      return next;
    } finally {
      this.#o.observer?.tokenRequest(renewal.grantId, (performance.now() - started) / 1000, result);
    }
  }
}

/** A fetch answered with something that expires within the minute: no use to a request. */
export class RenewalTooShort extends Error {
  readonly expiresAt: string;
  constructor(expiresAt: string) {
    super(`the answer holds a credential that expires at ${expiresAt}, too soon to use`);
    this.expiresAt = expiresAt;
  }
}
