import { isIP } from 'node:net';

// Address ranges in the config: `10.1.0.0/16`, `2001:db8::/32`, or a single address (a /32 or
// /128). One parser for proxy.allow_networks and rules' sources, so both accept the same text.

export interface Cidr {
  net: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Parses one CIDR or address; returns an error message (without the key path) when invalid. */
export function parseCidr(input: string): Cidr | string {
  const text = input.trim();
  const slash = text.indexOf('/');
  const net = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(net);
  // A zone (`fe80::1%eth0`) names an interface, not a range.
  if (version === 0 || net.includes('%')) return `"${text}": expected an IP address or CIDR range such as 10.1.0.0/16 or 2001:db8::/32`;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `"${text}": the prefix length must be 0 to ${max}`;
    prefix = Number(bits);
  }
  return { net, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}
