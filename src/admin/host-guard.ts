// The admin API answers only requests whose Host names its own listener. A web page can point a
// name it controls at 127.0.0.1 (DNS rebinding) and then read the admin API as same-origin; the
// browser still sends that name as Host, so checking Host is what shuts the page out. IP literals
// are safe to accept when they are this machine's: a rebinding page never has one as its origin.

import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopbackAddress } from '../config/index.ts';

export interface BoundAdmin {
  /** The address the listener is bound to (from server.address()). */
  address: string;
  port: number;
  /** The host as written in admin.listen (may be a name such as localhost). */
  configuredHost: string;
  /** admin.allowed_hosts: more names, each with or without :port (without: any port). */
  allowedHosts?: readonly string[] | undefined;
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** `Host` -> lower-case host (no brackets, no trailing dot) and port (80 when absent); undefined if malformed. */
export function parseHostHeader(value: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::(\d{1,5}))?$/i.exec(value.trim());
  if (!match) return undefined;
  const host = (match[1] ?? match[2] ?? '').toLowerCase().replace(/\.$/, '');
  const port = match[3] === undefined ? 80 : Number(match[3]);
  if (host === '' || port > 65535) return undefined;
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

/** The names this listener answers to, as a predicate on the raw Host header. */
export function adminHostGuard(bound: BoundAdmin): (hostHeader: string | undefined) => boolean {
  const boundAddress = bound.address.toLowerCase();
  const wildcard = WILDCARDS.has(boundAddress);
  const loopback = wildcard || isLoopbackAddress(boundAddress);
  const names = new Set([boundAddress, bound.configuredHost.toLowerCase().replace(/^\[|\]$/g, '')]);
  if (loopback) names.add('localhost');
  for (const wild of WILDCARDS) names.delete(wild); // 0.0.0.0 as a Host is the "0.0.0.0 day" browser trick
  const extra = (bound.allowedHosts ?? []).map((entry) => ({ entry: parseHostHeader(entry), anyPort: !/(?:^|[^:]|\]):\d+$/.test(entry) }));
  return (hostHeader) => {
    if (hostHeader === undefined) return false;
    const parsed = parseHostHeader(hostHeader);
    if (!parsed) return false;
    if (extra.some(({ entry, anyPort }) => entry?.host === parsed.host && (anyPort || entry.port === parsed.port))) return true;
    if (parsed.port !== bound.port) return false;
    const host = parsed.host.startsWith('::ffff:') && isIP(parsed.host.slice(7)) === 4 ? parsed.host.slice(7) : parsed.host;
    if (names.has(host)) return true;
    if (loopback && isLoopbackAddress(host)) return true;
    // Bound to every interface: any of this machine's own addresses, read now (interfaces change).
    return wildcard && isIP(host) !== 0 && interfaceAddresses().has(host);
  };
}

function interfaceAddresses(): Set<string> {
  return new Set(
    Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address.toLowerCase())
      .filter((a): a is string => a !== undefined),
  );
}
