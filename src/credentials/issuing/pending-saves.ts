// Token states the provider has issued but the store has not taken yet (store_locked after the lock
// wait, ENOSPC, EIO, EFBIG). With refresh-token rotation the refresh token in such a state is the only
// valid one: the old one is spent, and a provider that sees a spent refresh token again answers
// invalid_grant and revokes the whole grant. So the state is kept here, one per grant, its save is
// retried with a capped backoff until it lands or someone else's write supersedes it, and the holder
// keeps the grant's refresh lock meanwhile, so no keyway process on this home refreshes with the
// spent token. Its access token is handed out only once it is saved (persist before use).
//
// What is left: the state lives in this process's memory only. A crash (or a stop) before a save
// lands loses it, exactly like a crash between the provider's answer and the fsync, only the window
// is now as long as the store stays unwritable. And if this process stalls past the refresh lock's
// stale time (10 s) while holding it, another process may take the lock over and refresh with the
// spent token: the provider then revokes the grant, that process marks it needs_reconnect, and
// this state, superseded by that mark, is dropped rather than written over it.

import type { Logger } from 'pino';
import type { OAuthState } from './oauth-state.ts';
import type { ReleaseRefreshLock } from './refresh-lock.ts';

/** `saved`: on disk now (or found there already); `superseded`: the store holds a newer choice (a new secret, a revoke), which wins. */
export type WriteOutcome = 'saved' | 'superseded';
export type SaveOutcome = WriteOutcome | 'failed';

export interface PendingState {
  /** The state the provider issued, to be written. */
  readonly next: OAuthState;
  /** Writes `next` under the store lock after re-reading the file; throws when the store cannot be written. */
  readonly write: () => Promise<WriteOutcome>;
  /** The grant's refresh lock, held until the state is saved or superseded. */
  readonly release: ReleaseRefreshLock;
  /** Why the last save failed. */
  lastError: unknown;
  failures: number;
  nextAttemptAt: number;
  running: Promise<SaveOutcome> | undefined;
  timer: NodeJS.Timeout | undefined;
}

export interface PendingSavesOptions {
  now: () => number;
  logger?: Logger | undefined;
  /** First retry delay; doubles per failure up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

export class PendingSaves {
  readonly #o: PendingSavesOptions;
  // One entry per grant at most: a grant with an entry never refreshes again until it is settled.
  readonly #entries = new Map<string, PendingState>();

  constructor(options: PendingSavesOptions) {
    this.#o = options;
  }

  has(grantId: string): boolean {
    return this.#entries.has(grantId);
  }

  get(grantId: string): PendingState | undefined {
    return this.#entries.get(grantId);
  }

  /** Keeps a state whose first save failed, and schedules the retries. */
  hold(grantId: string, state: Pick<PendingState, 'next' | 'write' | 'release' | 'lastError'>): PendingState {
    const entry: PendingState = { ...state, failures: 1, nextAttemptAt: 0, running: undefined, timer: undefined };
    this.#entries.set(grantId, entry);
    this.#schedule(grantId, entry);
    return entry;
  }

  /** Is a save attempt running or due now (a request may wait for it rather than fail at once)? */
  ready(grantId: string): boolean {
    const entry = this.#entries.get(grantId);
    return entry !== undefined && (entry.running !== undefined || this.#o.now() >= entry.nextAttemptAt);
  }

  /** One save attempt, shared by everyone who asks while it runs. */
  attempt(grantId: string): Promise<SaveOutcome> {
    const entry = this.#entries.get(grantId);
    if (!entry) return Promise.resolve('saved');
    if (entry.running) return entry.running;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const run = this.#run(grantId, entry).finally(() => (entry.running = undefined));
    entry.running = run;
    return run;
  }

  /** Retries until the state is settled or `deadline` passes (a short-lived caller, the CLI, must not exit holding it). */
  async settle(grantId: string, deadline: number): Promise<SaveOutcome> {
    for (;;) {
      const entry = this.#entries.get(grantId);
      if (!entry) return 'saved';
      const wait = entry.running ? 0 : entry.nextAttemptAt - this.#o.now();
      if (wait > 0) {
        if (this.#o.now() + wait > deadline) return 'failed';
        // Then look again: the background timer, due at the same moment, may be the one to attempt.
        await new Promise((resolve) => setTimeout(resolve, wait));
        continue;
      }
      const outcome = await this.attempt(grantId);
      if (outcome !== 'failed') return outcome;
    }
  }

  /**
   * On stop: one more attempt now for every kept state, then retries until `deadline`. Returns the
   * grants whose state could still not be saved (those will need `keyway connect`).
   */
  async settleAll(deadline: number): Promise<string[]> {
    const unsaved: string[] = [];
    await Promise.all(
      [...this.#entries.keys()].map(async (grantId) => {
        if ((await this.attempt(grantId)) === 'failed' && (await this.settle(grantId, deadline)) === 'failed') unsaved.push(grantId);
      }),
    );
    return unsaved;
  }

  async #run(grantId: string, entry: PendingState): Promise<SaveOutcome> {
    let outcome: WriteOutcome;
    try {
      outcome = await entry.write();
    } catch (err) {
      entry.failures++;
      entry.lastError = err;
      this.#schedule(grantId, entry);
      this.#o.logger?.warn({ grant: grantId, failures: entry.failures, reason: reasonOf(err) }, 'refreshed token still not saved; kept in memory, retrying');
      return 'failed';
    }
    this.#entries.delete(grantId);
    // Said before the lock is released: whoever sees the state gone can already read why.
    if (outcome === 'saved') this.#o.logger?.info({ grant: grantId, failures: entry.failures }, 'refreshed token saved after a failed write');
    else this.#o.logger?.warn({ grant: grantId }, 'refreshed token dropped: the store now holds a newer secret or status for this grant');
    await entry.release();
    return outcome;
  }

  #schedule(grantId: string, entry: PendingState): void {
    const base = this.#o.baseDelayMs ?? BASE_DELAY_MS;
    const delay = Math.min(this.#o.maxDelayMs ?? MAX_DELAY_MS, base * 2 ** (entry.failures - 1));
    entry.nextAttemptAt = this.#o.now() + delay;
    clearTimeout(entry.timer);
    // Saved in the background too, so the state reaches the disk without waiting for the next request.
    entry.timer = setTimeout(() => void this.attempt(grantId), delay);
    entry.timer.unref();
  }
}

/** A short reason for logs and messages: an error code, never a message (a foreign message may quote a path or worse). */
export function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Za-z_]{2,32}$/.test(code) ? code : 'write failed';
}
