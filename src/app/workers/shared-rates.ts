// Request rates under proxy.workers: the token buckets live in the primary, so that `rate: 60/min`
// is 60 a minute for the whole keyway, not 60 per worker. A worker asks over IPC (RemoteRates); the
// primary takes the tokens in its own RateLimiter (answerRates) and says which scope, if any, had
// none. Only requests on a scope with a rate ask: the rest cost nothing.
import type { LimitScope, RateCounter, RateLimiter, RateVerdict } from '../../policy/rate-limits.ts';
import type { FromPrimary, FromWorker, RateScope } from './messages.ts';

// A primary that does not answer in this long is gone or stuck: the request is refused rather
// than let through uncounted (stages/limits.ts turns the rejection into internal_error).
const ANSWER_TIMEOUT_MS = 5_000;

interface Waiting {
  readonly scopes: readonly LimitScope[];
  readonly resolve: (verdict: RateVerdict) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** A worker's rate counter: the primary's buckets, asked over IPC. */
export class RemoteRates implements RateCounter {
  readonly #send: (message: FromWorker) => boolean;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #gone = false;

  constructor(send: (message: FromWorker) => boolean) {
    this.#send = send;
  }

  take(scopes: readonly LimitScope[], nowMs: number): Promise<RateVerdict> {
    if (this.#gone) return Promise.reject(new Error('the primary process is gone'));
    const id = this.#nextId++;
    const wire: RateScope[] = [];
    for (const scope of scopes) if (scope.limits.rate !== undefined) wire.push({ kind: scope.kind, name: scope.name, key: scope.key, rate: scope.limits.rate });
    return new Promise<RateVerdict>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error('the primary process did not answer'));
      }, ANSWER_TIMEOUT_MS);
      this.#waiting.set(id, { scopes: scopes.filter((s) => s.limits.rate !== undefined), resolve, reject, timer });
      try {
        this.#send({ t: 'rates', id, scopes: wire, nowMs });
      } catch (err) {
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(err as Error);
      }
    });
  }

  /** The primary's verdict on request `id`. */
  answer(message: Extract<FromPrimary, { t: 'verdict' }>): void {
    const waiting = this.#waiting.get(message.id);
    if (waiting === undefined) return;
    this.#waiting.delete(message.id);
    clearTimeout(waiting.timer);
    const scope = waiting.scopes[message.index];
    if (message.index < 0 || scope === undefined) waiting.resolve({ ok: true });
    else waiting.resolve({ ok: false, scope, rate: scope.limits.rate!, retryAfterMs: message.retryAfterMs });
  }

  /** The primary is gone: every question waiting, and every one after, fails. */
  primaryGone(): void {
    this.#gone = true;
    for (const [id, waiting] of this.#waiting) {
      clearTimeout(waiting.timer);
      this.#waiting.delete(id);
      waiting.reject(new Error('the primary process is gone'));
    }
  }
}

/** The primary's side: takes the tokens from its own buckets and says which scope had none (-1: none). */
export function answerRates(limiter: RateLimiter, message: Extract<FromWorker, { t: 'rates' }>): Extract<FromPrimary, { t: 'verdict' }> {
  const scopes: LimitScope[] = message.scopes.map((s) => ({ kind: s.kind, name: s.name, key: s.key, limits: { rate: s.rate, quota: undefined } }));
  const verdict = limiter.take(scopes, message.nowMs);
  return verdict.ok
    ? { t: 'verdict', id: message.id, index: -1, retryAfterMs: 0 }
    : { t: 'verdict', id: message.id, index: scopes.indexOf(verdict.scope), retryAfterMs: verdict.retryAfterMs };
}
