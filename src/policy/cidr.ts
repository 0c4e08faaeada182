import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/cidr.ts';

// Source address ranges for rules: `10.1.0.0/16`, `2001:db8::/32`, or a single address. Node's
// BlockList does the matching; it treats an IPv4-mapped IPv6 client (`::ffff:10.1.2.3`, as a
// dual-stack listener reports IPv4 peers) as the IPv4 address, in both directions.

export interface AddressSet {
  readonly source: readonly string[];
  has(address: string): boolean;
}

/** Builds the set, or returns the first error message. */
export function compileAddressSet(ranges: readonly string[]): AddressSet | string {
  const list = new BlockList();
  for (const text of ranges) {
    const parsed = parseCidr(text);
    if (typeof parsed === 'string') return parsed;
    list.addSubnet(parsed.net, parsed.prefix, parsed.family);
  }
  return {
    source: [...ranges],
    has(address) {
      const bare = stripZone(address);
      const version = isIP(bare);
      if (version === 0) return false;
      return list.check(bare, version === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

// A link-local peer may carry a zone (`fe80::1%eth0`); the zone says nothing about the range.
function stripZone(address: string): string {
  const percent = address.indexOf('%');
  return percent === -1 ? address : address.slice(0, percent);
}
