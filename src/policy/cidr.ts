import { BlockList, isIP } from 'node:net';

// Source address ranges for rules: `10.1.0.0/16`, `2001:db8::/32`, or a single address. Node's
// BlockList does the matching; it treats an IPv4-mapped IPv6 client (`::ffff:10.1.2.3`, as a
// dual-stack listener reports IPv4 peers) as the IPv4 address, in both directions.

export interface AddressSet {
  readonly source: readonly string[];
  has(address: string): boolean;
}

/** Parses one CIDR or address; returns an error message (without the key path) when invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | string {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0 || address.includes('%')) return `"${text}": expected an IP address or CIDR range such as 10.1.0.0/16 or 2001:db8::/32`;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `"${text}": the prefix length must be 0 to ${max}`;
    prefix = Number(bits);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Builds the set, or returns the first error message. */
export function compileAddressSet(ranges: readonly string[]): AddressSet | string {
  const list = new BlockList();
  for (const text of ranges) {
    const parsed = parseCidr(text.trim());
    if (typeof parsed === 'string') return parsed;
    list.addSubnet(parsed.address, parsed.prefix, parsed.family);
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
