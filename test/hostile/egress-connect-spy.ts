import { lookup as systemLookup } from 'node:dns';
import { isIP, Socket, type LookupFunction } from 'node:net';

// The connect hook for the Egress suite: every TCP connection made in this process (keyway runs
// in-process under vitest) passes through net.Socket.prototype.connect, whichever library opens
// it (undici, node:http agents, tls.connect, keyway's tunnel). The spy records the address each
// connection would reach, and stops any connection to an address the test does not allow BEFORE
// a packet leaves: an IP literal is swapped for a name that cannot resolve, and a name's lookup
// answer is checked before Node dials it. So a regression in keyway shows up as a counted,
// blocked attempt, never as traffic to a real private or metadata address.

export interface ConnectAttempt {
  host: string;
  port: number;
  /** The address Node would have dialled. */
  address: string;
  blocked: boolean;
}

export interface ConnectSpy {
  readonly attempts: ConnectAttempt[];
  /** Attempts to addresses the test does not allow (each one was blocked). */
  forbidden(): ConnectAttempt[];
  restore(): void;
}

const BLOCKED_HOST = 'blocked-by-egress-spy.invalid';
const WRAPPED = Symbol('egress-spy');

interface ConnectOptions {
  host?: string;
  port?: number | string;
  path?: string;
  lookup?: LookupFunction & { [WRAPPED]?: true };
}

/** `allowed(address, port)` says which dialled destinations are fine (e.g. exactly 127.0.0.1). */
export function spyOnConnects(allowed: (address: string, port: number) => boolean): ConnectSpy {
  const attempts: ConnectAttempt[] = [];
  const original = Socket.prototype.connect;
  const record = (host: string, port: number, address: string): boolean => {
    const blocked = !allowed(address, port);
    attempts.push({ host, port, address, blocked });
    return blocked;
  };

  Socket.prototype.connect = function patched(this: Socket, ...args: unknown[]) {
    const options = optionsOf(args);
    if (options && options.path === undefined) {
      const host = options.host ?? 'localhost';
      const port = Number(options.port);
      const inner: LookupFunction = options.lookup ?? (systemLookup as unknown as LookupFunction);
      if (isIP(host) !== 0 && record(host, port, host)) options.host = BLOCKED_HOST;
      if (!options.lookup?.[WRAPPED]) {
        const wrapped: LookupFunction & { [WRAPPED]?: true } = (hostname, lookupOptions, callback) => {
          if (hostname === BLOCKED_HOST) return callback(Object.assign(new Error('blocked by the egress spy'), { code: 'ENOTFOUND' }), '', 0);
          inner(hostname, lookupOptions, ((
            err: NodeJS.ErrnoException | null,
            address: string | Array<{ address: string; family: number }>,
            family?: number,
          ) => {
            if (err) return (callback as (e: unknown) => void)(err);
            const all = Array.isArray(address) ? address : [{ address, family: family ?? 4 }];
            const blocked = all.filter((a) => record(hostname, port, a.address));
            if (blocked.length > 0) return callback(Object.assign(new Error('blocked by the egress spy'), { code: 'ENOTFOUND' }), '', 0);
            (callback as (e: null, a: unknown, f?: number) => void)(null, address, family);
          }) as Parameters<LookupFunction>[2]);
        };
        wrapped[WRAPPED] = true;
        options.lookup = wrapped;
      }
    }
    return (original as (...a: unknown[]) => Socket).apply(this, args);
  } as typeof Socket.prototype.connect;

  return {
    attempts,
    forbidden: () => attempts.filter((a) => a.blocked),
    restore: () => {
      Socket.prototype.connect = original;
    },
  };
}

// net.connect hands Socket#connect its normalised [options, callback] array; tls and direct
// callers pass (options, callback) or (port, host, callback).
function optionsOf(args: unknown[]): ConnectOptions | undefined {
  const first = args[0];
  if (Array.isArray(first)) return typeof first[0] === 'object' && first[0] !== null ? (first[0] as ConnectOptions) : undefined;
  if (typeof first === 'object' && first !== null) return first as ConnectOptions;
  return undefined; // (port, host): only test code connects this way, to the proxy on 127.0.0.1
}
