import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { ProxyError } from '../errors/index.ts';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Name -> one address. `proxy.hosts` first (like curl --resolve), then the system resolver. */
export type Resolver = (host: string) => Promise<ResolvedAddress>;

export function createResolver(hosts: Readonly<Record<string, string>>): Resolver {
  const table = new Map(Object.entries(hosts).map(([name, address]) => [name.toLowerCase(), address]));
  return async (host) => {
    const mapped = table.get(host) ?? (isIP(host) ? host : undefined);
    if (mapped !== undefined) return { address: mapped, family: isIP(mapped) === 6 ? 6 : 4 };
    try {
      const found = await lookup(host, { verbatim: true });
      return { address: found.address, family: found.family === 6 ? 6 : 4 };
    } catch (err) {
      throw new ProxyError('upstream_unreachable', `cannot resolve ${host}`, { cause: err });
    }
  };
}

/**
 * Adapts a Resolver to the `lookup` option of net/tls connect, so every connection keyway makes,
 * whichever library makes it, goes to the one address the resolver chose.
 */
export function lookupFunction(resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname.replace(/^\[|\]$/g, '')).then(
      ({ address, family }) => {
        if ((options as { all?: boolean }).all) {
          (callback as unknown as (err: null, all: ResolvedAddress[]) => void)(null, [{ address, family }]);
        } else {
          callback(null, address, family);
        }
      },
      (err: unknown) => {
        const error = Object.assign(new Error(`cannot resolve ${hostname}`), { code: 'ENOTFOUND', cause: err });
        callback(error as NodeJS.ErrnoException, '', 0);
      },
    );
  };
}
