import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/cidr.ts';

// Where traffic may go at all. An agent can name any host; without this, a name that resolves to
// 127.0.0.1, 10.0.0.5 or 169.254.169.254 would let it reach services behind the proxy (SSRF).
// Pure: decides on an address already resolved, never on the host text.

interface Range {
  net: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
  why: string;
}

const REFUSED: Range[] = [
  { net: '0.0.0.0', prefix: 8, family: 'ipv4', why: '"this network" address' },
  { net: '10.0.0.0', prefix: 8, family: 'ipv4', why: 'private address (RFC 1918)' },
  { net: '100.64.0.0', prefix: 10, family: 'ipv4', why: 'carrier-grade NAT address' },
  { net: '127.0.0.0', prefix: 8, family: 'ipv4', why: 'loopback address' },
  { net: '169.254.169.254', prefix: 32, family: 'ipv4', why: 'cloud metadata address' },
  { net: '169.254.0.0', prefix: 16, family: 'ipv4', why: 'link-local address' },
  { net: '172.16.0.0', prefix: 12, family: 'ipv4', why: 'private address (RFC 1918)' },
  { net: '192.0.0.0', prefix: 24, family: 'ipv4', why: 'IETF protocol address' },
  { net: '192.168.0.0', prefix: 16, family: 'ipv4', why: 'private address (RFC 1918)' },
  { net: '198.18.0.0', prefix: 15, family: 'ipv4', why: 'benchmarking address' },
  { net: '224.0.0.0', prefix: 4, family: 'ipv4', why: 'multicast address' },
  { net: '240.0.0.0', prefix: 4, family: 'ipv4', why: 'reserved address' },
  { net: '::', prefix: 128, family: 'ipv6', why: 'unspecified address' },
  { net: '::1', prefix: 128, family: 'ipv6', why: 'loopback address' },
  { net: 'fd00:ec2::254', prefix: 128, family: 'ipv6', why: 'cloud metadata address' },
  { net: 'fc00::', prefix: 7, family: 'ipv6', why: 'unique-local address' },
  { net: 'fe80::', prefix: 10, family: 'ipv6', why: 'link-local address' },
  { net: 'ff00::', prefix: 8, family: 'ipv6', why: 'multicast address' },
  { net: '100::', prefix: 64, family: 'ipv6', why: 'discard address' },
];

export type EgressVerdict = { allowed: true } | { allowed: false; reason: string };

/**
 * The address check. `allowNetworks` (proxy.allow_networks) lets chosen ranges through, e.g.
 * 127.0.0.0/8 for local tests or 10.1.0.0/16 for an internal API.
 */
export class EgressPolicy {
  readonly #allowed = new BlockList();

  constructor(allowNetworks: readonly string[] = []) {
    for (const cidr of allowNetworks) {
      const parsed = parseCidr(cidr);
      if (typeof parsed === 'string') throw new Error(`"${cidr}" is not a CIDR range`);
      this.#allowed.addSubnet(parsed.net, parsed.prefix, parsed.family);
    }
  }

  check(address: string): EgressVerdict {
    const family = isIP(address);
    if (family === 0) return { allowed: false, reason: `"${address}" is not an IP address` };
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (this.#allowed.check(address, type)) return { allowed: true };
    const why = refusedBecause(address, type);
    return why ? { allowed: false, reason: `${address} is a ${why}` } : { allowed: true };
  }
}

function refusedBecause(address: string, type: 'ipv4' | 'ipv6'): string | undefined {
  for (const range of REFUSED) {
    // BlockList matches IPv4-mapped IPv6 (::ffff:10.0.0.1) against the IPv4 ranges.
    const list = new BlockList();
    list.addSubnet(range.net, range.prefix, range.family);
    if (list.check(address, type)) return range.why;
  }
  if (type === 'ipv6') {
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address inside: judge that one.
    const embedded = embeddedIpv4(address);
    if (embedded) {
      const why = refusedBecause(embedded, 'ipv4');
      if (why) return `${why} inside an IPv6 address`;
    }
  }
  return undefined;
}

function embeddedIpv4(address: string): string | undefined {
  const words = expandIpv6(address);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return v4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!);
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1]!.split('.').map(Number);
    text = text.slice(0, -dotted[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  const words = [...left, ...Array<string>(missing).fill('0'), ...right].map((w) => parseInt(w || '0', 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}
