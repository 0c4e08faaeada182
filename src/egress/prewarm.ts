import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Connector } from '../net/undici.ts';

const PARKED_MS = 10_000;

/**
 * Opens the upstream TLS connection for a newly intercepted host while the client is still doing
 * its own handshake with keyway, instead of after its first request arrives: the two handshakes
 * overlap. Used only for origins with no recent connection; a parked socket that nobody claims is
 * closed after PARKED_MS. Connections go through the same connector (egress check, trust store).
 */
export class PrewarmingConnector {
  readonly #base: Connector;
  readonly #parked = new Map<string, Parked>();
  // Origins connected lately: undici most likely holds a kept-alive connection to them already.
  readonly #recent = new LRUCache<string, true>({ max: 2_000, ttl: 30_000 });

  readonly #parkedMs: number;

  constructor(base: Connector, options: { parkedMs?: number } = {}) {
    this.#base = base;
    this.#parkedMs = options.parkedMs ?? PARKED_MS;
  }

  /** The `connect` function for undici: a parked connection when there is one, else a new one. */
  readonly connect: Connector = (options, callback) => {
    const key = originKey(options.protocol, options.hostname, options.port);
    this.#recent.set(key, true);
    const parked = this.#parked.get(key);
    if (!parked) return this.#base(options, callback);
    this.#parked.delete(key);
    // Its timer would otherwise hold the socket, and through it undici's whole pool for the origin,
    // for PARKED_MS after the pool let go of it: at 50 new hosts a second, ~500 pools (~20 MiB).
    clearTimeout(parked.timer);
    parked.socket.then(
      (socket) => (socket.destroyed ? this.#base(options, callback) : callback(null, socket)),
      () => this.#base(options, callback), // a failed warm-up: connect again and report that error
    );
  };

  prewarm(host: string, port: number): void {
    const key = originKey('https:', host, String(port));
    if (this.#recent.has(key) || this.#parked.has(key)) return;
    this.#recent.set(key, true);
    const socket = new Promise<Socket>((resolve, reject) => {
      this.#base({ hostname: host, protocol: 'https:', port: String(port), servername: isIP(host) === 0 ? host : undefined }, (err, s) => {
        if (err || !s) return reject(err ?? new Error('no socket'));
        s.on('error', () => undefined); // parked: an error only means it will not be used
        resolve(s);
      });
    });
    socket.catch(() => undefined);
    const timer = setTimeout(() => {
      this.#parked.delete(key);
      void socket.then(
        (s) => s.destroy(),
        () => undefined,
      );
    }, this.#parkedMs).unref();
    this.#parked.set(key, { socket, timer });
  }

  close(): void {
    for (const { socket, timer } of this.#parked.values()) {
      clearTimeout(timer);
      void socket.then(
        (s) => s.destroy(),
        () => undefined,
      );
    }
    this.#parked.clear();
  }
}

interface Parked {
  socket: Promise<Socket>;
  timer: NodeJS.Timeout;
}

function originKey(protocol: string, hostname: string, port: string): string {
  return `${protocol}//${hostname.replace(/^\[|\]$/g, '').toLowerCase()}:${port}`;
}
