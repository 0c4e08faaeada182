import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { ProxyError } from '../errors/index.ts';
import type { EgressPolicy } from '../policy/egress.ts';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Name -> one address. `proxy.hosts` first (like curl --resolve), then the system resolver. */
export type Resolver = (host: string) => Promise<ResolvedAddress>;

/** The system resolver, one address (the first, as the system orders them). */
export const systemLookup: Resolver = async (host) => {
  const found = await lookup(host, { verbatim: true });
  return { address: found.address, family: found.family === 6 ? 6 : 4 };
};

export function createResolver(hosts: Readonly<Record<string, string>>, dns: Resolver = systemLookup): Resolver {
  const table = new Map(Object.entries(hosts).map(([name, address]) => [name.toLowerCase(), address]));
  return async (host) => {
    const mapped = table.get(host) ?? (isIP(host) ? host : undefined);
    if (mapped !== undefined) return { address: mapped, family: isIP(mapped) === 6 ? 6 : 4 };
    try {
      return await dns(host);
    } catch (err) {
      throw new ProxyError('upstream_unreachable', `cannot resolve ${host}`, { cause: err });
    }
  };
}

/**
 * Egress safety: resolve once, check the address, and hand out only that address, so the
 * connection goes exactly where the check looked (a second lookup could be answered differently:
 * DNS rebinding). A refused address is a 403 host_not_allowed saying why.
 */
export function guardResolver(resolve: Resolver, policy: EgressPolicy): Resolver {
  return async (host) => {
    const resolved = await resolve(host);
    const verdict = policy.check(resolved.address);
    if (!verdict.allowed) {
      throw new ProxyError('host_not_allowed', `${host} resolves to a refused destination: ${verdict.reason}`, {
        hint: 'if this destination is intended, add its range to proxy.allow_networks',
      });
    }
    return resolved;
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
        // A refusal keeps its ProxyError (as `proxyError`), so the answer to the agent says why.
        const error = Object.assign(new Error(`cannot resolve ${hostname}`), {
          code: err instanceof ProxyError && err.code === 'host_not_allowed' ? 'EKEYWAYREFUSED' : 'ENOTFOUND',
          cause: err,
          proxyError: err instanceof ProxyError ? err : undefined,
        });
        callback(error as NodeJS.ErrnoException, '', 0);
      },
    );
  };
}
