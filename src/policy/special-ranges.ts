import type { IpAddress } from './address.ts';
import { firstMatch, inRange, range, type IpRange } from './ip-ranges.ts';

// Destinations refused unless proxy.allow_networks lets them through: everything that is not an
// ordinary host on the public Internet. Drawn from the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and its updates) plus multicast. Narrower entries come first, so a message
// names the most precise reason. An agent has no business reaching any of these; where the
// registry marks a range "globally reachable" but it is an infrastructure anycast (PCP, AMT,
// AS112 inside 2001::/23, 192.0.0.9-10 inside 192.0.0.0/24), refusing costs nothing and keeps
// the table short.

const IPV4: IpRange<string>[] = [
  range('169.254.169.254/32', 'cloud metadata address'),
  range('100.100.100.200/32', 'cloud metadata address'), // Alibaba Cloud, inside 100.64.0.0/10
  range('0.0.0.0/8', '"this network" address'), // Linux connects 0.0.0.0 to this host
  range('10.0.0.0/8', 'private address (RFC 1918)'),
  range('100.64.0.0/10', 'carrier-grade NAT address (RFC 6598)'),
  range('127.0.0.0/8', 'loopback address'),
  range('169.254.0.0/16', 'link-local address'),
  range('172.16.0.0/12', 'private address (RFC 1918)'),
  range('192.0.0.0/24', 'IETF protocol address (RFC 6890)'),
  range('192.0.2.0/24', 'documentation address (TEST-NET-1)'),
  range('192.88.99.0/24', 'deprecated 6to4 relay address (RFC 7526)'),
  range('192.168.0.0/16', 'private address (RFC 1918)'),
  range('198.18.0.0/15', 'benchmarking address (RFC 2544)'),
  range('198.51.100.0/24', 'documentation address (TEST-NET-2)'),
  range('203.0.113.0/24', 'documentation address (TEST-NET-3)'),
  range('224.0.0.0/4', 'multicast address'),
  range('255.255.255.255/32', 'broadcast address'),
  range('240.0.0.0/4', 'reserved address'),
];

const IPV6: IpRange<string>[] = [
  range('::/128', 'unspecified address'),
  range('::1/128', 'loopback address'),
  // Never reached by a folded address (canonical() turns these into IPv4 first), but listed so
  // that a caller who forgets to fold is still refused.
  range('::ffff:0:0/96', 'IPv4-mapped address'),
  range('::/96', 'IPv4-compatible address (deprecated, RFC 4291)'),
  range('::ffff:0:0:0/96', 'IPv4-translated address (RFC 2765)'),
  range('64:ff9b:1::/48', 'local-use NAT64 address (RFC 8215)'),
  range('100::/64', 'discard-only address (RFC 6666)'),
  range('100:0:0:1::/64', 'dummy IPv6 prefix address (RFC 9780)'),
  // 2001::/32 Teredo: the client's IPv4 address is inside, inverted; address.ts reads it too, so
  // allowing 2001::/32 still refuses a Teredo address that embeds a refused IPv4 address.
  range('2001::/32', 'Teredo address (RFC 4380)'),
  range('2001:db8::/32', 'documentation address'),
  range('2001::/23', 'IETF protocol address (RFC 2928)'),
  range('3fff::/20', 'documentation address (RFC 9637)'),
  range('5f00::/16', 'SRv6 segment identifier (RFC 9602)'),
  range('fd00:ec2::254/128', 'cloud metadata address'),
  range('fc00::/7', 'unique-local address'),
  range('fe80::/10', 'link-local address'),
  range('fec0::/10', 'site-local address (deprecated, RFC 3879)'),
  range('ff00::/8', 'multicast address'),
];

// Only 2000::/3 is allocated as global unicast; everything else in IPv6 is reserved by the IETF
// and not routed on the Internet. The NAT64 well-known prefix (64:ff9b::/96) lives outside it but
// is global by design (RFC 6052): it is judged by the IPv4 address inside (address.ts).
const GLOBAL_UNICAST = range('2000::/3', undefined);
const NAT64_WELL_KNOWN = range('64:ff9b::/96', undefined);

/** Why the address is refused by default, or undefined for an ordinary public address. */
export function specialPurpose(ip: IpAddress): string | undefined {
  if (ip.version === 4) return firstMatch(IPV4, ip)?.label;
  const listed = firstMatch(IPV6, ip)?.label;
  if (listed) return listed;
  if (!inRange(ip, GLOBAL_UNICAST) && !inRange(ip, NAT64_WELL_KNOWN)) return 'reserved IPv6 address (outside global unicast 2000::/3)';
  return undefined;
}
