import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Exchanged, ExchangeRequest } from './exchange.ts';

// Derived tokens cached per subject and audience until they are due (a skew before their expiry),
// one exchange at a time per key in this process: N requests for one end user cost one exchange.
// After a 401, a new exchange at most once per the grant's renew_floor per key: the floor is kept
// with the cache, per subject (its token and what it is exchanged for), so one end user's API
// refusing everything spends no other user's renewal. Like the cache, it is this process's own:
// with proxy.workers N, up to N exchanges per floor per subject.

export interface ExchangedToken {
  readonly token: Exchanged;
  /** This call made the exchange (false: the cache had it, or another call's exchange was joined). */
  readonly exchanged: boolean;
  /** After a 401 within the renew floor: no exchange, this is the token refused. */
  readonly floored?: true;
}

export class ExchangedTokens {
  readonly #exchange: (request: ExchangeRequest) => Promise<Exchanged>;
  readonly #now: () => number;
  readonly #skewMs: number;
  /** Bounded: a fleet's users and their rotating identity tokens would otherwise grow it for as long as keyway runs. */
  readonly #held = new LRUCache<string, Exchanged>({ max: 10_000 });
  readonly #inFlight = new Map<string, Promise<Exchanged>>();
  /** When a 401 last made each key exchange again (the renew floor), as bounded as the tokens. */
  readonly #renewedOn401 = new LRUCache<string, number>({ max: 10_000 });

  constructor(exchange: (request: ExchangeRequest) => Promise<Exchanged>, options: { now?: () => number; skewMs?: number } = {}) {
    this.#exchange = exchange;
    this.#now = options.now ?? Date.now;
    this.#skewMs = options.skewMs ?? 60_000;
  }

  /** The key a request's token is cached under: the subject token, what it is exchanged for, and the chain acting (hashed: no token kept as a key). */
  static keyOf(request: ExchangeRequest): string {
    const what = JSON.stringify([
      request.subjectToken,
      request.subjectTokenType,
      request.audience ?? [],
      request.resource ?? [],
      request.scope ?? [],
      request.requestedTokenType ?? '',
      request.actorToken ?? '',
      request.actorChain ?? [],
    ]);
    return createHash('sha256').update(what).digest('hex');
  }

  async get(request: ExchangeRequest): Promise<ExchangedToken> {
    const key = ExchangedTokens.keyOf(request);
    const held = this.#held.get(key);
    if (held !== undefined && this.#fresh(held)) return { token: held, exchanged: false };
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

  /**
   * After an upstream refused `refused` (a 401): a new token, once for all the requests refused
   * with it (one exchanged since, or in flight, will do); within `floorMs` of the last exchange a
   * 401 made for this key, none: the refused token, floored.
   */
  async afterRejection(request: ExchangeRequest, refused: string, floorMs: number): Promise<ExchangedToken> {
    const key = ExchangedTokens.keyOf(request);
    const held = this.#held.get(key);
    if (held !== undefined && held.accessToken !== refused && this.#fresh(held)) return { token: held, exchanged: false };
    const running = this.#inFlight.get(key);
    if (running !== undefined) return { token: await running, exchanged: false };
    const last = this.#renewedOn401.get(key);
    if (held !== undefined && last !== undefined && this.#now() < last + floorMs) return { token: held, exchanged: false, floored: true };
    this.#renewedOn401.set(key, this.#now());
    this.#held.delete(key);
    return this.get(request);
  }

  #fresh(token: Exchanged): boolean {
    return token.expiresAt - this.#skewMs > this.#now();
  }
}
