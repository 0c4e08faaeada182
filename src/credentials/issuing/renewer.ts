import type { Logger } from 'pino';
import { KeywayError, type ProxyError } from '../../errors/index.ts';
import { acquireRefreshLock, type ReleaseRefreshLock } from './refresh-lock.ts';
import type { Renewal, Renewed } from './renewal.ts';
import type { TokenObserver, TokenRequestResult, TokenStore } from './token-store.ts';

export type { Renewal, Renewed } from './renewal.ts';

// The lifecycle every credential keyway fetches or mints for itself shares (an OAuth grant's
// refreshed token, a GitHub App's or a service account's token, an AWS role's credentials): the
// request path reads what is held; shortly before it expires one caller per grant renews it (single
// flight in this process, the grant's refresh lock across processes, the store's lock across
// replicas), re-reads the store under that lock first (another process may have renewed), saves the
// new state sealed in the store, and backs off after a failure while a state still usable is handed
// out. An expired one never is. After a 401, a renewal is made at most once per the grant's
// renew_floor, whichever process asks (renewal.ts RenewFloor). What differs per kind (what is
// fetched, where it lives, how early, and OAuth's rotation) is its Renewal (renewal.ts).

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

/** A renewal asked for now: the held state that meets it (one fetched since, another than the one refused). */
type MetBy<State> = (state: State) => boolean;
/** What the maps below hold: each grant's own kind of state (a grant has one type, so one kind). */
type AnyState = unknown;

/** With renewals failing, a state this far from expiry is still handed out; closer, a request could outlive it. */
export const STILL_USABLE_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

/**
 * One per keyway process, given every renewing kind (OAuth tokens, role credentials, minted
 * tokens): its single flight, backoff and memory are per grant, and a grant has one kind. Each
 * method is generic in the state of the renewal it is handed.
 */
export class Renewer {
  readonly #o: RenewerOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<Renewed<AnyState>>>();
  // Grants whose renewal in flight was forced (a refused state, `keyway refresh`): the held state is
  // suspect, so a request waits for the new one rather than carry the one just refused.
  readonly #forcedInFlight = new Set<string>();
  readonly #failures = new Map<string, Failure>();
  // States fetched that the store would not take (Renewal.unsaved 'memory'): used until it does.
  readonly #unsaved = new Map<string, AnyState>();

  constructor(options: RenewerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The newest state held for the grant (the store's, or one it would not take), expired or not. */
  held<State>(renewal: Renewal<State>): State | undefined {
    const candidates = [renewal.stored(), this.#unsaved.get(renewal.grantId) as State | undefined].filter(
      (s): s is State => s !== undefined && renewal.isFor(s),
    );
    return candidates.sort((a, b) => renewal.expiresAt(b) - renewal.expiresAt(a))[0];
  }

  /** A state valid beyond the renewal margin: the one held, else a new one (joining a renewal in flight). */
  get<State>(renewal: Renewal<State>): Promise<Renewed<State>> | Renewed<State> {
    // If that renewal fails, the held state is judged as usual (a provider down must not fail requests a valid token serves).
    if (this.#forcedInFlight.has(renewal.grantId)) {
      return this.#joined(renewal, this.#running<State>(renewal)!).catch(() => this.get(renewal));
    }
    const held = this.held(renewal);
    if (held !== undefined && this.#fresh(renewal, held)) return { state: held, renewed: false };
    return this.#single(renewal, () => this.#renew(renewal, undefined));
  }

  /**
   * A new state now, whatever the held one's expiry (`keyway refresh`, POST /api/grants/{id}/refresh),
   * under the same single flight and lock: a renewal in flight is joined, and a state `metBy` accepts
   * will do (by default, one another process made since this was asked for). Past any backoff unless
   * the kind's forced renewals back off; a failure is thrown.
   */
  renewNow<State>(renewal: Renewal<State>, metBy?: MetBy<State>): Promise<Renewed<State>> {
    const askedAt = new Date(this.#now()).toISOString();
    return this.#force(renewal, metBy ?? ((held) => renewal.issuedAt(held) > askedAt), undefined);
  }

  /**
   * After the upstream refused a state (a 401: the provider revoked the token, say): a new one, once
   * for all the requests refused with it. `wasUsed` tells the refused state from a newer one; `metBy`
   * is what will do instead of a new one (by default, any other still usable). Within the grant's
   * renew_floor of the last renewal a 401 made (by any process: the time is kept in the state), the
   * refused state comes back `floored`, with no fetch: its 401 goes to the agent.
   */
  afterRejection<State>(
    renewal: Renewal<State>,
    wasUsed: (state: State) => boolean,
    metBy: MetBy<State> = (held) => !wasUsed(held) && this.#usable(renewal, held),
  ): Promise<Renewed<State>> | Renewed<State> {
    const held = this.held(renewal);
    if (held !== undefined && metBy(held)) return { state: held, renewed: false };
    if (held !== undefined && this.#floored(renewal, held, wasUsed)) return { state: held, renewed: false, floored: true };
    const running = this.#running<State>(renewal);
    if (running) return this.#joined(renewal, running);
    return this.#force(renewal, metBy, wasUsed);
  }

  /** A renewal asked for now, joining one in flight; `refused`: it is a 401's (the floor applies). */
  #force<State>(renewal: Renewal<State>, metBy: MetBy<State>, refused: MetBy<State> | undefined): Promise<Renewed<State>> {
    const running = this.#running<State>(renewal);
    if (running) return running;
    const forced = this.#start(renewal, () => this.#renew(renewal, metBy, refused));
    this.#forcedInFlight.add(renewal.grantId);
    return forced;
  }

  /** `state` is the one refused, and a 401 made the grant renew less than its renew_floor ago. */
  #floored<State>(renewal: Renewal<State>, state: State, refused: MetBy<State>): boolean {
    const floor = renewal.renewFloor;
    if (floor === undefined || !refused(state)) return false;
    const at = floor.at(state);
    return at !== undefined && this.#now() < at + floor.ms;
  }

  /** A 401's renewal starts the floor; any other carries the last 401's time over (it opens no floor). */
  #marked<State>(renewal: Renewal<State>, next: State, from: State | undefined, for401: boolean): State {
    const floor = renewal.renewFloor;
    if (floor === undefined) return next;
    const at = for401 ? this.#now() : from === undefined ? undefined : floor.at(from);
    return at === undefined ? next : floor.marked(next, at);
  }

  #fresh<State>(renewal: Renewal<State>, state: State): boolean {
    return renewal.expiresAt(state) - renewal.renewBeforeMs > this.#now();
  }

  /** Good to hand out while no renewal can be had. */
  #usable<State>(renewal: Renewal<State>, state: State): boolean {
    return renewal.expiresAt(state) - (renewal.usableMarginMs ?? STILL_USABLE_MS) > this.#now();
  }

  /** The renewal in flight for the grant, as its own kind's. */
  #running<State>(renewal: Renewal<State>): Promise<Renewed<State>> | undefined {
    return this.#inFlight.get(renewal.grantId) as Promise<Renewed<State>> | undefined;
  }

  /** One renewal per grant at a time: callers that come while one runs share its answer. */
  #single<State>(renewal: Renewal<State>, start: () => Promise<Renewed<State>>): Promise<Renewed<State>> {
    const running = this.#running<State>(renewal);
    if (running) return this.#joined(renewal, running);
    return this.#start(renewal, start);
  }

  /** A caller's share of a renewal it did not start: as not renewed by it, unless the kind says otherwise. */
  #joined<State>(renewal: Renewal<State>, running: Promise<Renewed<State>>): Promise<Renewed<State>> {
    return renewal.joinersShareRenewed ? running : running.then((r) => ({ ...r, renewed: false }));
  }

  #start<State>(renewal: Renewal<State>, start: () => Promise<Renewed<State>>): Promise<Renewed<State>> {
    const attempt = start().finally(() => {
      this.#inFlight.delete(renewal.grantId);
      this.#forcedInFlight.delete(renewal.grantId);
    });
    this.#inFlight.set(renewal.grantId, attempt);
    return attempt;
  }

  /** With no renewal to be had: a state still usable (never to a forced renewal, which asked for a new one), else `error`. */
  #stillUsableOr<State>(renewal: Renewal<State>, error: ProxyError, forced: boolean): Renewed<State> {
    const held = this.held(renewal);
    if (!forced && held !== undefined && this.#usable(renewal, held)) return { state: held, renewed: false };
    throw error;
  }

  /**
   * `metBy`: a renewal asked for now (renewNow): it throws rather than fall back, and skips the
   * backoff unless the kind's back off. `refused`: asked for by a 401 (afterRejection), under the floor.
   */
  async #renew<State>(renewal: Renewal<State>, metBy: MetBy<State> | undefined, refused?: MetBy<State>): Promise<Renewed<State>> {
    const { grantId } = renewal;
    const forced = metBy !== undefined;
    if (renewal.pending) {
      let resumed: Renewed<State> | undefined;
      try {
        resumed = await renewal.pending();
      } catch (err) {
        return this.#stillUsableOr(renewal, renewal.failed(err), forced);
      }
      if (resumed) return resumed;
    }
    const failure = this.#failures.get(grantId);
    const backsOff = !forced || renewal.forcedBacksOff === true;
    if (backsOff && failure && this.#now() < failure.nextAttemptAt) return this.#stillUsableOr(renewal, failure.error, forced);
    renewal.ready?.();
    let release: ReleaseRefreshLock | undefined;
    let kept = false;
    const keepLock = (): ReleaseRefreshLock => {
      kept = true;
      return release!;
    };
    try {
      const waitMs = this.#o.timeoutMs + 5_000;
      // The store's own lock where it has one (PostgreSQL: across machines), else a file per grant.
      release = this.#o.store.acquireRefreshLock
        ? await this.#o.store.acquireRefreshLock(grantId, waitMs)
        : await acquireRefreshLock(this.#o.lockDir, grantId, waitMs);
      const result = await this.#renewLocked(renewal, metBy, keepLock, refused);
      this.#failures.delete(grantId);
      return result;
    } catch (err) {
      if (renewal.final?.(err)) throw err;
      // A state fetched and kept until its save lands (it took the lock): the provider answered, so no backoff.
      if (kept) return this.#stillUsableOr(renewal, renewal.failed(err), forced);
      if (err instanceof KeywayError && err.code === 'store_unavailable') {
        // The database failed, not the provider (no call was made): no backoff, the next request tries again.
        return this.#stillUsableOr(renewal, renewal.storeDown(err), forced);
      }
      const error = renewal.failed(err);
      let count: number | undefined;
      // A renewal a person asked for fails to them; the request path keeps its own backoff (unless the kind's forced renewals back off).
      if (backsOff) {
        count = (failure?.count ?? 0) + 1;
        this.#failures.set(grantId, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      }
      this.#o.logger?.warn({ grant: grantId, forced, failures: count, reason: error.message }, renewal.log.failed);
      return this.#stillUsableOr(renewal, error, forced);
    } finally {
      if (release && !kept) await release();
    }
  }

  async #renewLocked<State>(
    renewal: Renewal<State>,
    metBy: MetBy<State> | undefined,
    keepLock: () => ReleaseRefreshLock,
    refused: MetBy<State> | undefined,
  ): Promise<Renewed<State>> {
    // Another process may have renewed while this one waited for the lock: update() re-reads the store.
    await this.#o.store.update(() => undefined);
    const held = this.held(renewal);
    if (held !== undefined) renewal.check?.(held);
    if (held !== undefined && (metBy ? metBy(held) : this.#fresh(renewal, held))) return { state: held, renewed: false };
    // The state refused is one another process fetched for a 401 within the floor.
    if (refused !== undefined && held !== undefined && this.#floored(renewal, held, refused)) return { state: held, renewed: false, floored: true };
    let next: State;
    try {
      next = this.#marked(renewal, await this.#timed(renewal, held), held, refused !== undefined);
    } catch (err) {
      const found = await renewal.recover?.(err, held);
      if (found === undefined) throw err;
      return { state: found, renewed: false };
    }
    if (renewal.persist) await renewal.persist(next, held, keepLock);
    else await this.#save(renewal, next);
    this.#o.logger?.info({ grant: renewal.grantId, ...renewal.log.fields(next) }, renewal.log.renewed);
    this.#o.observer?.tokenRefreshed(renewal.grantId);
    return { state: next, renewed: true };
  }

  /** Saves a new state in one store update; one the store would not take is a failure or used from memory, as the kind says. */
  async #save<State>(renewal: Renewal<State>, next: State): Promise<void> {
    try {
      await this.#o.store.update((draft) => renewal.save?.(draft, next));
      this.#unsaved.delete(renewal.grantId);
    } catch (err) {
      if (renewal.unsaved !== 'memory') throw err;
      // Unlike a rotated refresh token, this state is not the grant's only future (the stored key
      // gets new ones any time): used from memory; other processes, not seeing it, may fetch once more.
      this.#unsaved.set(renewal.grantId, next);
      this.#o.logger?.warn({ grant: renewal.grantId, reason: (err as Error).message }, `${renewal.log.renewed}, but not saved; used from memory`);
    }
  }

  /** One fetch, timed and counted like a token endpoint call; a state no longer usable on arrival is refused. */
  async #timed<State>(renewal: Renewal<State>, from: State | undefined): Promise<State> {
    const started = performance.now();
    let result: TokenRequestResult | undefined = 'error';
    try {
      const next = await renewal.fetch(this.#now(), from);
      if (!this.#usable(renewal, next)) throw new RenewalTooShort(new Date(renewal.expiresAt(next)).toISOString());
      result = 'ok';
      return next;
    } catch (err) {
      if (renewal.requestResult) result = renewal.requestResult(err);
      throw err;
    } finally {
      if (result !== undefined) this.#o.observer?.tokenRequest(renewal.grantId, (performance.now() - started) / 1000, result);
    }
  }
}

/** A fetch answered with something no longer usable on arrival (minted tokens and role credentials: within the minute). */
export class RenewalTooShort extends Error {
  readonly expiresAt: string;
  constructor(expiresAt: string) {
    super(`the answer holds a credential that expires at ${expiresAt}, too soon to use`);
    this.expiresAt = expiresAt;
  }
}
