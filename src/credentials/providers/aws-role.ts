import type { Logger } from 'pino';
import { KeywayError, ProxyError } from '../../errors/index.ts';
import type { Dispatcher } from '../../net/undici.ts';
import { awsRoleStateId, type AwsRoleState } from '../aws-role-state.ts';
import type { Grant } from '../grants.ts';
import type { Credential } from '../material.ts';
import type { AssumeRole } from '../signing/aws/config.ts';
import type { TokenObserver, TokenStore } from './oauth-tokens.ts';
import { acquireRefreshLock, type ReleaseRefreshLock } from './refresh-lock.ts';
import { assumeRole, StsError } from './sts-assume-role.ts';

type AwsKey = Extract<Credential, { kind: 'aws' }>;

export interface AwsRoleOptions {
  /** The same store and locks as OAuth refreshes: one STS call per grant per expiry, across processes and replicas. */
  store: TokenStore;
  lockDir: string;
  timeoutMs: number;
  /** How STS is reached: like token endpoints and upstreams (proxy.hosts, system CAs plus proxy.upstream_ca). */
  dispatcher?: Dispatcher | undefined;
  logger?: Logger | undefined;
  /** The token clock (epoch ms): expiry, refresh and backoff; tests move it instead of sleeping. */
  now?: (() => number) | undefined;
  /** /metrics: each STS call (keyway_token_requests_total) and each credential saved (keyway_token_refreshes_total). */
  observer?: TokenObserver | undefined;
}

export interface RoleCredential {
  credential: AwsKey;
  /** An STS call happened to produce it (for the audit line). */
  refreshed: boolean;
}

interface Failure {
  count: number;
  nextAttemptAt: number;
  error: ProxyError;
}

// The SDKs refresh role credentials 5 minutes before they expire; so does keyway, which leaves a
// request that starts just before the refresh time its whole duration to finish.
export const ROLE_REFRESH_BEFORE_MS = 5 * 60_000;
// With STS failing, credentials still this far from expiry are used rather than refusing; closer
// than that, a request could reach AWS after they expired: refused (token_refresh_failed).
const STILL_USABLE_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

/**
 * An aws_sigv4 grant's assume_role credentials, in the shape of OAuth refreshes (oauth-tokens.ts):
 * the request path reads the store's memory; before Expiration one caller per grant calls STS
 * (single flight in this process, the grant's refresh lock across processes and replicas), re-reads
 * the store under that lock first (another process may have refreshed), saves the credentials
 * sealed in the store, and backs off after a failure. An expired credential is never handed out.
 */
export class AwsRoleCredentials {
  readonly #o: AwsRoleOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<string, Promise<RoleCredential>>();
  readonly #failures = new Map<string, Failure>();
  // Credentials STS issued that the store would not take. Unlike a rotated refresh token they are
  // not the grant's only future (the stored key gets new ones any time), so they are used from
  // memory meanwhile; other processes, not seeing them, may call STS once more.
  readonly #unsaved = new Map<string, AwsRoleState>();

  constructor(options: AwsRoleOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The newest role credentials held for this grant, role and key, expired or not (callers check). */
  state(grant: Grant, role: AssumeRole, key: AwsKey): AwsRoleState | undefined {
    const stored = this.#o.store.get<AwsRoleState>(awsRoleStateId(grant.id));
    const held = this.#unsaved.get(grant.id);
    const best = [stored, held].filter((s): s is AwsRoleState => s !== undefined && matches(s, role, key)).sort((a, b) => b.expiresAt - a.expiresAt);
    return best[0];
  }

  /** Temporary credentials valid beyond the refresh margin; calls STS first when due. */
  async get(grant: Grant, role: AssumeRole, key: AwsKey): Promise<RoleCredential> {
    const current = this.state(grant, role, key);
    if (current && this.#fresh(current)) return { credential: credentialOf(current), refreshed: false };
    return this.#single(grant, () => this.#refresh(grant, role, key, false));
  }

  /**
   * Assumes the role now, whatever the held credentials' expiry (`keyway refresh`, POST
   * /api/grants/{grant}/refresh): joins a call already in flight, else makes one, past any backoff.
   * Throws token_refresh_failed when STS fails (never falls back to the held credentials).
   */
  async refreshNow(grant: Grant, role: AssumeRole, key: AwsKey): Promise<AwsRoleState> {
    await this.#single(grant, () => this.#refresh(grant, role, key, true));
    const state = this.state(grant, role, key);
    if (!state) throw new ProxyError('token_refresh_failed', `grant "${grant.id}" holds no role credentials after assuming its role`, { grant: grant.id });
    return state;
  }

  /**
   * One STS call per grant at a time: callers that come while one runs share its answer, and only
   * the caller that started it is told `refreshed` (the audit line of the request that paid for it).
   */
  #single(grant: Grant, start: () => Promise<RoleCredential>): Promise<RoleCredential> {
    const running = this.#inFlight.get(grant.id);
    if (running) return running.then((r) => ({ ...r, refreshed: false }));
    const attempt = start().finally(() => this.#inFlight.delete(grant.id));
    this.#inFlight.set(grant.id, attempt);
    return attempt;
  }

  #fresh(state: AwsRoleState): boolean {
    return state.expiresAt - ROLE_REFRESH_BEFORE_MS > this.#now();
  }

  /** What is there when no refresh could be had: credentials not near expiry, else `error`. */
  #stillUsableOr(grant: Grant, role: AssumeRole, key: AwsKey, error: ProxyError): RoleCredential {
    const current = this.state(grant, role, key);
    if (current && current.expiresAt - STILL_USABLE_MS > this.#now()) return { credential: credentialOf(current), refreshed: false };
    throw error;
  }

  async #refresh(grant: Grant, role: AssumeRole, key: AwsKey, forced: boolean): Promise<RoleCredential> {
    const failure = this.#failures.get(grant.id);
    if (!forced && failure && this.#now() < failure.nextAttemptAt) return this.#stillUsableOr(grant, role, key, failure.error);
    let release: ReleaseRefreshLock | undefined;
    try {
      const waitMs = this.#o.timeoutMs + 5_000;
      // The store's own lock where it has one (PostgreSQL: across machines), else a file per grant:
      // the very lock an OAuth grant's refresh takes.
      release = this.#o.store.acquireRefreshLock
        ? await this.#o.store.acquireRefreshLock(grant.id, waitMs)
        : await acquireRefreshLock(this.#o.lockDir, grant.id, waitMs);
      const result = await this.#refreshLocked(grant, role, key, forced);
      this.#failures.delete(grant.id);
      return result;
    } catch (err) {
      if (err instanceof KeywayError && err.code === 'store_unavailable') {
        // The database failed, not STS (no call was made): no backoff, the next request tries again.
        const down = new ProxyError('token_refresh_failed', `grant "${grant.id}" cannot assume its role while the store's database is unavailable`, {
          grant: grant.id,
          cause: err,
          hint: "keyway tries again on the next request once the database is back; /readyz shows the store's state",
        });
        if (forced) throw down;
        return this.#stillUsableOr(grant, role, key, down);
      }
      const error =
        err instanceof ProxyError
          ? err
          : new ProxyError('token_refresh_failed', err instanceof StsError ? err.message : `grant "${grant.id}" could not assume role ${role.roleArn}`, {
              grant: grant.id,
              cause: err,
              hint: "keyway retries with backoff; check the role's trust policy, the stored key and sts_endpoint",
            });
      this.#o.logger?.warn({ grant: grant.id, role: role.roleArn, forced, reason: error.message }, 'assume role failed');
      // A refresh a person asked for fails to them; the request path keeps its own backoff.
      if (forced) throw error;
      const count = (failure?.count ?? 0) + 1;
      this.#failures.set(grant.id, { count, nextAttemptAt: this.#now() + Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (count - 1)), error });
      return this.#stillUsableOr(grant, role, key, error);
    } finally {
      if (release) await release();
    }
  }

  async #refreshLocked(grant: Grant, role: AssumeRole, key: AwsKey, forced: boolean): Promise<RoleCredential> {
    // Another process may have called STS while we waited for the lock: update() re-reads the store.
    await this.#o.store.update(() => undefined);
    const current = this.state(grant, role, key);
    if (!forced && current && this.#fresh(current)) return { credential: credentialOf(current), refreshed: false };
    const now = this.#now();
    const issued = await this.#timed(grant, () => assumeRole(role, key, { timeoutMs: this.#o.timeoutMs, dispatcher: this.#o.dispatcher, now }));
    if (issued.expiresAt - STILL_USABLE_MS <= this.#now()) {
      throw new StsError(
        `STS answered AssumeRole for ${role.roleArn} with credentials that expire at ${new Date(issued.expiresAt).toISOString()}, too soon to use`,
      );
    }
    const next: AwsRoleState = {
      roleArn: role.roleArn,
      externalId: role.externalId,
      sourceKeyId: key.accessKeyId,
      ...issued,
      refreshedAt: new Date(now).toISOString(),
    };
    try {
      await this.#o.store.update((draft) => {
        draft.set(awsRoleStateId(grant.id), next);
      });
      this.#unsaved.delete(grant.id);
    } catch (err) {
      this.#unsaved.set(grant.id, next);
      this.#o.logger?.warn({ grant: grant.id, reason: (err as Error).message }, 'role credentials not saved; used from memory');
    }
    this.#o.logger?.info({ grant: grant.id, role: role.roleArn, expires_at: new Date(next.expiresAt).toISOString() }, 'role assumed');
    this.#o.observer?.tokenRefreshed(grant.id);
    return { credential: credentialOf(next), refreshed: true };
  }

  /** An STS call, timed and counted like a token endpoint call (result ok or error). */
  async #timed<T>(grant: Grant, call: () => Promise<T>): Promise<T> {
    const observer = this.#o.observer;
    if (!observer) return call();
    const started = performance.now();
    let result: 'ok' | 'error' = 'error';
    try {
      const out = await call();
      result = 'ok';
      return out;
    } finally {
      observer.tokenRequest(grant.id, (performance.now() - started) / 1000, result);
    }
  }
}

function matches(state: AwsRoleState, role: AssumeRole, key: AwsKey): boolean {
  return state.roleArn === role.roleArn && state.externalId === role.externalId && state.sourceKeyId === key.accessKeyId;
}

function credentialOf(state: AwsRoleState): AwsKey {
  return { kind: 'aws', accessKeyId: state.accessKeyId, secretAccessKey: state.secretAccessKey, sessionToken: state.sessionToken };
}
