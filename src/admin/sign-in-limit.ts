// Guessing the admin token on the sign-in page is bounded: each client address gets a few wrong
// tries per window, then every try (right or wrong) is refused until the window ends. The token has
// 256 bits, so this is not what keeps it safe; it keeps a local process from hammering the listener
// and filling the audit log with failed sign-ins. Bearer/X-API-Key callers are not counted here.

export interface SignInLimits {
  /** Wrong tries allowed per client within one window. */
  failures: number;
  windowMs: number;
  /** Most client addresses tracked at once (the oldest is forgotten first): memory stays bounded. */
  maxClients: number;
}

export const DEFAULT_SIGN_IN_LIMITS: SignInLimits = { failures: 10, windowMs: 60_000, maxClients: 1024 };

interface Window {
  startedAt: number;
  failures: number;
}

export class SignInLimiter {
  readonly #clients = new Map<string, Window>();
  readonly #limits: SignInLimits;
  readonly #now: () => number;

  constructor(limits: SignInLimits = DEFAULT_SIGN_IN_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  /** 0 when the client may try now, else the seconds until it may. */
  retryAfter(client: string): number {
    const window = this.#current(client);
    if (!window || window.failures < this.#limits.failures) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.#limits.windowMs - this.#now()) / 1000));
  }

  failed(client: string): void {
    let window = this.#current(client);
    if (!window) {
      if (this.#clients.size >= this.#limits.maxClients) {
        const oldest = this.#clients.keys().next().value;
        if (oldest !== undefined) this.#clients.delete(oldest);
      }
      window = { startedAt: this.#now(), failures: 0 };
      this.#clients.set(client, window);
    }
    window.failures++;
  }

  #current(client: string): Window | undefined {
    const window = this.#clients.get(client);
    if (window && this.#now() - window.startedAt >= this.#limits.windowMs) {
      this.#clients.delete(client);
      return undefined;
    }
    return window;
  }
}
