// Request rates under proxy.workers: the token buckets live in the primary, so that `rate: 60/min`
// is 60 a minute for the whole keyway, not 60 per worker. A worker asks over IPC (RemoteRates); the
// primary takes the tokens in its own RateLimiter (answerRates) and says which scope, if any, had
// none. Only requests on a scope with a rate ask: the rest cost nothing.
//
// A bucket the primary found empty stays empty until its next token (retryAfterMs): nothing but
// time adds tokens. So a worker refuses a request on that scope itself until then, without asking:
// an agent flooding past its rate does not keep the primary's one thread busy answering it. The
// refusal is the one the primary would give (its wait rounded up to the millisecond), kept under
// the bucket's own key (bucketKey: a reload that changes the rate is another bucket).
import { bucketKey, type LimitScope, type RateCounter, type RateLimiter, type RateVerdict } from '../../policy/rate-limits.ts';
import type { FromPrimary, FromWorker, RateScope } from './messages.ts';
import { PendingQuestions } from './pending-questions.ts';

/** Past this many empty buckets remembered, those whose wait is over are forgotten. */
const EMPTY_KEPT = 256;

/** A worker's rate counter: the primary's buckets, asked over IPC. */
export class RemoteRates implements RateCounter {
  readonly #send: (message: FromWorker) => boolean;
  /** Questions waiting for the primary's verdict, each with the scopes that have a rate. */
  readonly #pending = new PendingQuestions<RateVerdict, { scopes: readonly LimitScope[]; nowMs: number }>();
  /** Buckets the primary found empty, by bucketKey: when their next token comes (epoch ms). */
  readonly #emptyUntil = new Map<string, number>();
  constructor(send: (message: FromWorker) => boolean) {
    this.#send = send;
  }

  take(scopes: readonly LimitScope[], nowMs: number): RateVerdict | Promise<RateVerdict> {
    if (this.#pending.gone) return Promise.reject(new Error('the primary process is gone'));
    const empty = this.#stillEmpty(scopes, nowMs);
    if (empty !== undefined) return empty;
    const wire: RateScope[] = [];
    for (const scope of scopes) if (scope.limits.rate !== undefined) wire.push({ kind: scope.kind, name: scope.name, key: scope.key, rate: scope.limits.rate });
    const asked = { scopes: scopes.filter((s) => s.limits.rate !== undefined), nowMs };
    return this.#pending.ask(asked, (id) => this.#send({ t: 'rates', id, scopes: wire, nowMs }));
  }

  /** The primary's verdict on request `id`. */
  answer(message: Extract<FromPrimary, { t: 'verdict' }>): void {
    this.#pending.answer(message.id, ({ scopes, nowMs }) => {
      const scope = scopes[message.index];
      if (message.index < 0 || scope === undefined) return { ok: true };
      this.#remember(bucketKey(scope, scope.limits.rate!), nowMs + message.retryAfterMs, nowMs);
      return { ok: false, scope, rate: scope.limits.rate!, retryAfterMs: message.retryAfterMs };
    });
  }

  /** The refusal for a scope whose bucket the primary found empty and whose next token has not come. */
  #stillEmpty(scopes: readonly LimitScope[], nowMs: number): RateVerdict | undefined {
    if (this.#emptyUntil.size === 0) return undefined;
    for (const scope of scopes) {
      const rate = scope.limits.rate;
      if (rate === undefined) continue;
      const key = bucketKey(scope, rate);
      const until = this.#emptyUntil.get(key);
      if (until === undefined) continue;
      if (nowMs < until) return { ok: false, scope, rate, retryAfterMs: until - nowMs };
      this.#emptyUntil.delete(key);
    }
    return undefined;
  }

  #remember(key: string, until: number, nowMs: number): void {
    if (this.#emptyUntil.size >= EMPTY_KEPT) for (const [k, u] of this.#emptyUntil) if (u <= nowMs) this.#emptyUntil.delete(k);
    if (this.#emptyUntil.size < EMPTY_KEPT) this.#emptyUntil.set(key, until);
  }

  /** The primary is gone: every question waiting, and every one after, fails. */
  primaryGone(): void {
    this.#pending.primaryGone();
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
