import type { KeywayError, ProxyError } from '../../errors/index.ts';
import type { StoreDraft } from '../store/draft.ts';
import type { ReleaseRefreshLock } from './refresh-lock.ts';
import type { TokenRequestResult } from './token-store.ts';

// One kind's side of a renewal (renewer.ts runs the lifecycle): what is fetched, where it lives,
// how early. The optional members are where OAuth's refresh differs from a credential keyway mints:
// its refresh token rotates (spent once used), so a new state must be saved before it is used and
// never lost, and a refusal can mean another process rotated it first. A kind without them gets the
// Renewer's defaults.

/** One kind's side of a renewal, for one grant. */
export type Renewal<State> = RenewalCore<State> & (SavedByRenewer<State> | Persisted<State>);

export interface RenewalCore<State> {
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
  /**
   * The call that gets a new state (a token endpoint, STS), at the token clock's `now`; `from` is
   * the state held, re-read under the lock (an OAuth refresh sends its refresh token).
   */
  fetch(now: number, from: State | undefined): Promise<State>;
  /** What a failed fetch (or save) is to the agent: token_refresh_failed with the kind's words. */
  failed(err: unknown): ProxyError;
  /** The same, when the store's database is down (no call was made, so no backoff either). */
  storeDown(err: KeywayError): ProxyError;
  /** The log lines' words: `token minted`, `role assumed`; fields for the success line (never a secret). */
  readonly log: { renewed: string; failed: string; fields(state: State): Record<string, unknown> };

  /**
   * How long before expiry a held state stops being handed out while no renewal can be had (and
   * an answer that expires sooner is refused). Default STILL_USABLE_MS, so a request cannot
   * outlive it; OAuth's is 0 ("not expired"), as its refreshes always were.
   */
  readonly usableMarginMs?: number;
  /**
   * Callers that join a renewal in flight are told `renewed` as its starter was. Default: not
   * renewed by them. OAuth's audit lines say refreshed:true for every request that waited on the refresh.
   */
  readonly joinersShareRenewed?: boolean;
  /**
   * A forced renewal (renewNow) obeys the backoff: during it, it throws the backoff's error
   * without a call; a failed one extends it. Default: forced renewals skip it. OAuth's do not:
   * a provider that refuses refreshes is not asked again sooner for a 401's replay or `keyway refresh`.
   */
  readonly forcedBacksOff?: boolean;
  /** Throws when no renewal can start at all (OAuth: no provider to refresh with): no lock, no backoff, no fallback. */
  ready?(): void;
  /**
   * A state fetched earlier and still waiting for its save (OAuth's PendingSaves, which holds the
   * lock meanwhile): run before anything else. Its answer once saved; undefined to renew as usual;
   * throws while it still waits (then a state still usable is handed out, unless forced).
   */
  pending?(): Promise<Renewed<State> | undefined>;
  /** Throws when the state re-read under the lock says the grant cannot be used (OAuth: revoked, needs reconnect). */
  check?(state: State): void;
  /** An error that ends the renewal as it is: no backoff, no held state instead (OAuth: the grant needs reconnecting). */
  final?(err: unknown): boolean;
  /**
   * After a failed fetch: a state another process saved meanwhile, used as not renewed here, or
   * undefined to fail. OAuth: a refresh token another process rotated looks like invalid_grant.
   */
  recover?(err: unknown, from: State | undefined): Promise<State | undefined>;
  /** How a failed fetch is counted (keyway_token_requests_total): default `error`; undefined when no call was made. */
  requestResult?(err: unknown): TokenRequestResult | undefined;
  /**
   * The grant's renew_floor: a renewal a 401 asks for (Renewer.afterRejection) is made at most once
   * per `ms`; within it the refused state comes back `floored`. Absent: every 401 may renew.
   */
  readonly renewFloor?: RenewFloor<State>;
}

/**
 * Where a state keeps when a 401 last made the grant renew: in the state itself, saved with it, so
 * that every process and replica on the store keeps one floor per grant (none asks the token
 * endpoint again on a 401 while the state another one fetched for a 401 is within it). A renewal
 * made for expiry carries the time over: it does not open the floor again.
 */
export interface RenewFloor<State> {
  readonly ms: number;
  /** When a 401 last made the grant renew (epoch ms, the token clock), as the state records it. */
  at(state: State): number | undefined;
  /** The state, recording that time. */
  marked(state: State, at: number): State;
}

/** A state that records it as `renewedOn401At` (a minted token's, an OAuth grant's). */
export function renewFloorOf<State extends { renewedOn401At?: number | undefined }>(ms: number): RenewFloor<State> {
  return { ms, at: (state) => state.renewedOn401At, marked: (state, at) => ({ ...state, renewedOn401At: at }) };
}

/** A state the Renewer saves itself, in one store update. */
export interface SavedByRenewer<State> {
  /** Puts the new state in the store (under its lock). */
  save(draft: StoreDraft, state: State): void;
  /** A new state the store would not take: used from memory meanwhile (`memory`), or a failure (`fail`). */
  readonly unsaved: 'memory' | 'fail';
  readonly persist?: undefined;
}

/**
 * A state the kind saves itself, under the renewal's lock: OAuth, whose rotated refresh token is
 * the grant's only future. `keepLock` hands the lock over (the Renewer no longer releases it), for
 * a state kept until its save lands; throwing after that starts no backoff (the provider answered).
 */
export interface Persisted<State> {
  persist(next: State, from: State | undefined, keepLock: () => ReleaseRefreshLock): Promise<void>;
  readonly save?: undefined;
  readonly unsaved?: undefined;
}

export interface Renewed<State> {
  state: State;
  /** A fetch happened to produce it, for the caller that paid for it (its audit line says `refreshed`). */
  renewed: boolean;
  /** Asked for after a 401 within the grant's renew_floor: no fetch; `state` is the one refused. */
  floored?: true | undefined;
}
