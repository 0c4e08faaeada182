// The upstream connections keyway keeps, one undici Pool per origin, with a bound on how many idle
// origins stay connected.
//
// Why not undici's Agent: it keeps every origin's connections until each one's keep-alive runs out
// (30 s here, up to 10 minutes when a server asks for it). An agent that touches many hosts leaves
// one idle TLS connection per host, ~40 KiB each in OpenSSL's buffers and Node's. Measured with
// bench/memory.ts, whose s5 opens 200 new hosts in a row: with Buffers collected as they go
// (process/buffer-reclaim.ts), s5 grew RSS by 16-18 MiB under the Agent and by ~2 MiB with this
// bound (docs/perf/breakdown.md, thirteenth pass).
//
// What it admits: at most `idleOriginsKept` origins with nothing queued, pending or running keep
// their pools; past that the least recently used idle ones are closed, when a new origin opens and,
// while there are more origins than the bound, once a second. An origin with a request on it is
// never closed.
// The pool leaves the map before it is closed, so the next request to that origin opens a new
// connection instead of meeting a closing pool. A pool whose last connection closed by itself
// (keep-alive ran out, the server hung up) leaves the map as it does in undici's Agent.
import type * as Undici from 'undici';
import { DispatcherClass, Pool, undiciErrors } from '../net/undici.ts';

const { ClientClosedError, ClientDestroyedError } = undiciErrors;

/** How many origins may keep idle connections: the few APIs an agent calls, with room to spare. */
export const IDLE_ORIGINS_KEPT = 32;
/** How soon origins that were busy when the bound was passed are looked at again. */
const RECHECK_MS = 1000;

/**
 * The pools keyway's upstream requests go through, with `connect` making their connections:
 * HTTP/2 where the upstream offers it in ALPN, HTTP/1.1 otherwise (undici picks by the handshake).
 */
export function upstreamPools(connect: Undici.buildConnector.connector, headersTimeoutMs: number): OriginPools {
  return new OriginPools({
    connect,
    allowH2: true,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: headersTimeoutMs,
    // Streams such as SSE may sit quiet for a while; five minutes of silence ends them.
    bodyTimeout: 300_000,
  });
}

interface Origin {
  readonly pool: Undici.Pool;
  /** When it was last given a request, in this dispatcher's own count of requests. */
  lastUse: number;
}

export class OriginPools extends DispatcherClass {
  readonly #options: Undici.Pool.Options;
  readonly #idleOriginsKept: number;
  readonly #origins = new Map<string, Origin>();
  #uses = 0;
  #recheck: NodeJS.Timeout | undefined;
  #closed = false;
  #destroyed = false;

  constructor(options: Undici.Pool.Options, idleOriginsKept = IDLE_ORIGINS_KEPT) {
    super();
    this.#options = options;
    this.#idleOriginsKept = idleOriginsKept;
  }

  /** How many origins have a pool now (read by test/unit/origin-pools.test.ts). */
  get origins(): number {
    return this.#origins.size;
  }

  override dispatch(options: Undici.Dispatcher.DispatchOptions, handler: Undici.Dispatcher.DispatchHandler): boolean {
    if (this.#destroyed) throw new ClientDestroyedError();
    if (this.#closed) throw new ClientClosedError();
    // undici's Agent reads the origin the same way; a request without one is its error to give.
    const key = String(options.origin);
    let origin = this.#origins.get(key);
    if (origin === undefined) {
      origin = this.#open(key);
    } else {
      origin.lastUse = ++this.#uses;
    }
    return origin.pool.dispatch(options, handler);
  }

  #open(key: string): Origin {
    const pool = new Pool(key, this.#options);
    const origin: Origin = { pool, lastUse: ++this.#uses };
    const leaveIfUnused = () => {
      if (this.#origins.get(key) !== origin) return;
      const stats = pool.stats;
      if (stats.connected > 0 || stats.size > 0) return;
      this.#origins.delete(key);
      void pool.close().catch(() => pool.destroy());
    };
    pool.on('disconnect', leaveIfUnused).on('connectionError', leaveIfUnused);
    this.#origins.set(key, origin);
    // The new origin has no request yet, so it would look idle: it is spared.
    this.#closeIdleBeyondBound(origin);
    return origin;
  }

  /** Closes the least recently used idle origins (never `spared`) until at most `idleOriginsKept` are idle. */
  #closeIdleBeyondBound(spared?: Origin): void {
    if (this.#origins.size <= this.#idleOriginsKept) return;
    const idle = [...this.#origins].filter(([, o]) => o !== spared && o.pool.stats.size === 0).sort(([, a], [, b]) => a.lastUse - b.lastUse);
    // A new origin (`spared`) is idle as soon as its first answer ends: it counts against the bound.
    const over = idle.length + (spared === undefined ? 0 : 1) - this.#idleOriginsKept;
    for (const [key, origin] of idle.slice(0, Math.max(0, over))) {
      this.#origins.delete(key);
      void origin.pool.close().catch(() => origin.pool.destroy());
    }
    // Busy origins over the bound become idle when their requests end: they are looked at again
    // within a second, as long as there are more origins than the bound.
    if (this.#origins.size > this.#idleOriginsKept) this.#recheck ??= setTimeout(this.#recheckNow, RECHECK_MS).unref();
  }

  readonly #recheckNow = () => {
    this.#recheck = undefined;
    if (!this.#closed) this.#closeIdleBeyondBound();
  };

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const pools = this.#take();
    const done = Promise.all(pools.map((p) => p.close().catch(() => p.destroy()))).then(() => undefined);
    if (callback === undefined) return done;
    void done.then(callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.#closed = true;
    this.#destroyed = true;
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const then = typeof errOrCallback === 'function' ? errOrCallback : callback;
    const done = Promise.all(this.#take().map((p) => p.destroy(err))).then(() => undefined);
    if (then === undefined) return done;
    void done.then(then);
  }

  #take(): Undici.Pool[] {
    clearTimeout(this.#recheck);
    const pools = [...this.#origins.values()].map((o) => o.pool);
    this.#origins.clear();
    return pools;
  }
}
