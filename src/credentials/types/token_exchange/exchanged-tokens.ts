import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Exchanged, ExchangeRequest } from './exchange.ts';

// Derived tokens cached per subject and audience until they are due (a skew before their expiry),
// one exchange at a time per key in this process: N requests for one end user cost one exchange.

export interface ExchangedToken {
  readonly token: Exchanged;
  /** This call made the exchange (false: the cache had it, or another call's exchange was joined). */
  readonly exchanged: boolean;
}

export class ExchangedTokens {
  readonly #exchange: (request: ExchangeRequest) => Promise<Exchanged>;
  readonly #now: () => number;
  readonly #skewMs: number;
  /** Bounded: a fleet's users and their rotating identity tokens would otherwise grow it for as long as keyway runs. */
  readonly #held = new LRUCache<string, Exchanged>({ max: 10_000 });
  readonly #inFlight = new Map<string, Promise<Exchanged>>();

  constructor(exchange: (request: ExchangeRequest) => Promise<Exchanged>, options: { now?: () => number; skewMs?: number } = {}) {
    this.#exchange = exchange;
    this.#now = options.now ?? Date.now;
    this.#skewMs = options.skewMs ?? 60_000;
  }

  /** The key a request's token is cached under: the subject token and what it is exchanged for (hashed: no token kept as a key). */
  static keyOf(request: ExchangeRequest): string {
    const what = JSON.stringify([
      request.subjectToken,
      request.subjectTokenType,
      request.audience ?? [],
      request.resource ?? [],
      request.scope ?? [],
      request.requestedTokenType ?? '',
      request.actorToken ?? '',
    ]);
    return createHash('sha256').update(what).digest('hex');
  }

  async get(request: ExchangeRequest): Promise<ExchangedToken> {
    const key = ExchangedTokens.keyOf(request);
    const held = this.#held.get(key);
    if (held !== undefined && held.expiresAt - this.#skewMs > this.#now()) return { token: held, exchanged: false };
    const running = this.#inFlight.get(key);
    if (running !== undefined) return { token: await running, exchanged: false };
    const exchange = this.#exchange(request).then(
      (token) => {
        this.#held.set(key, token);
        return token;
      },
      (err: unknown) => {
        this.#held.delete(key);
        throw err;
      },
    );
    this.#inFlight.set(key, exchange);
    try {
      return { token: await exchange, exchanged: true };
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /** Drops a token an upstream refused (its next request exchanges again). */
  forget(request: ExchangeRequest): void {
    this.#held.delete(ExchangedTokens.keyOf(request));
  }
}
