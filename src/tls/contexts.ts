// TLS server contexts for intercepted hosts, in two bounded tiers so a client cycling through many
// host names cannot grow memory without limit, and a proxy serving many names stays small:
//   - leaves: the minted certificate per host (about 1 KiB of PEM; minting costs ~1 ms), many kept;
//   - contexts: the OpenSSL context built from a leaf (about 40 KiB each, measured; building one
//     from a kept leaf costs ~0.2 ms), few kept: only hot hosts need one ready, since a context is
//     used only during a handshake.
// One context per host for 1,000 hosts was ~40-60 MiB of RSS in the soak run; this is ~3 MiB.
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { normaliseHost } from './host.ts';
import type { LeafCertificate, LeafMinter } from './leaf.ts';
import { DAY_MS } from './x509-util.ts';

// Re-mint now and then so a host kept hot in a proxy that runs for months never reaches its
// leaf's notAfter. lru-cache checks age on read; no timers are involved.
const LEAF_TTL_MS = 30 * DAY_MS;
// A context never outlives its leaf by more than this.
const CONTEXT_TTL_MS = DAY_MS;

/** Minted leaves kept by default: past this many hosts, the least recently used is minted again when needed. */
export const DEFAULT_MAX_LEAVES = 1000;

export interface SecureContextCacheOptions {
  /** Most minted leaves kept; default DEFAULT_MAX_LEAVES. */
  max?: number;
  /** Most built contexts kept; default 64. */
  maxContexts?: number;
}

export class SecureContextCache {
  readonly #minter: LeafMinter;
  readonly #leaves: LRUCache<string, LeafCertificate>;
  readonly #contexts: LRUCache<string, SecureContext>;
  // Plain counts for the metrics, read when scraped.
  #hits = 0;
  #mints = 0;

  constructor(minter: LeafMinter, options: SecureContextCacheOptions = {}) {
    this.#minter = minter;
    this.#leaves = new LRUCache<string, LeafCertificate>({ max: options.max ?? DEFAULT_MAX_LEAVES, ttl: LEAF_TTL_MS });
    this.#contexts = new LRUCache<string, SecureContext>({ max: options.maxContexts ?? 64, ttl: CONTEXT_TTL_MS });
  }

  /** The context for `host` (name or IP; case, trailing dot and IPv6 brackets ignored). */
  get(host: string): SecureContext {
    const key = normaliseHost(host);
    let context = this.#contexts.get(key);
    if (context === undefined) {
      // Minting is synchronous, so concurrent handshakes for one new host cannot mint twice.
      let leaf = this.#leaves.get(key);
      if (leaf === undefined) {
        leaf = this.#minter.mint(key);
        this.#mints++;
        this.#leaves.set(key, leaf);
      } else this.#hits++;
      context = createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
      this.#contexts.set(key, context);
    } else this.#hits++;
    return context;
  }

  /** Hosts with a minted leaf kept. */
  get size(): number {
    return this.#leaves.size;
  }

  /** Hosts with a built context kept. */
  get contexts(): number {
    return this.#contexts.size;
  }

  /** Since start: handshakes served from a kept leaf or context (hits), and leaves minted. */
  get stats(): { leaves: number; contexts: number; hits: number; mints: number } {
    return { leaves: this.#leaves.size, contexts: this.#contexts.size, hits: this.#hits, mints: this.#mints };
  }
}
