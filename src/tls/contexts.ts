// TLS server contexts for intercepted hosts, minted on first use and kept in a bounded LRU so a
// client cycling through many SNI names cannot grow memory without limit.
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { normaliseHost } from './host.ts';
import type { LeafMinter } from './leaf.ts';
import { DAY_MS } from './x509-util.ts';

// Re-mint now and then so a host kept hot in a proxy that runs for months never reaches its
// leaf's notAfter. lru-cache checks age on read; no timers are involved.
const CONTEXT_TTL_MS = 30 * DAY_MS;

export interface SecureContextCacheOptions {
  /** Most contexts kept; default 1000. */
  max?: number;
}

export class SecureContextCache {
  readonly #minter: LeafMinter;
  readonly #cache: LRUCache<string, SecureContext>;

  constructor(minter: LeafMinter, options: SecureContextCacheOptions = {}) {
    this.#minter = minter;
    this.#cache = new LRUCache<string, SecureContext>({ max: options.max ?? 1000, ttl: CONTEXT_TTL_MS });
  }

  /** The context for `host` (name or IP; case, trailing dot and IPv6 brackets ignored). */
  get(host: string): SecureContext {
    const key = normaliseHost(host);
    let context = this.#cache.get(key);
    if (context === undefined) {
      // Minting is synchronous, so concurrent handshakes for one new host cannot mint twice.
      const { certPem, keyPem } = this.#minter.mint(key);
      context = createSecureContext({ cert: certPem, key: keyPem });
      this.#cache.set(key, context);
    }
    return context;
  }

  get size(): number {
    return this.#cache.size;
  }
}
