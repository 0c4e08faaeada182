import { isIP } from 'node:net';

// One canonical form for every address check. An IPv6 address can name an IPv4 host in several
// spellings (::ffff:127.0.0.1, ::ffff:7f00:1, 0:0:0:0:0:ffff:7f00:1, ::127.0.0.1,
// ::ffff:0:127.0.0.1); a check that compares text, or that knows only some of the forms, is
// bypassed by the others. Every check (egress, keyway's own ports, local addresses, rules'
// sources) parses with parseIp and folds with canonicalAddress first, then decides on bytes.
// Pure: no lookup, no I/O. Host text that only a resolver accepts (2130706433, 0x7f.1, 0177.0.0.1)
// is not an address here: keyway decides on the address the lookup returns (dns.lookup reads
// 2130706433 as 127.0.0.1, and 0127.0.0.1 as 87.0.0.1).

export interface IpAddress {
  readonly version: 4 | 6;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  readonly bytes: Uint8Array;
}

/** How an IPv6 address that carries an IPv4 address was written. */
export type Ipv4Form =
  | 'mapped' //      ::ffff:a.b.c.d   (RFC 4291): the same IPv4 host, as dual-stack sockets report it
  | 'compatible' //  ::a.b.c.d        (RFC 4291, deprecated): no longer routed, but names that host
  | 'translated'; // ::ffff:0:a.b.c.d (RFC 2765, SIIT): names that host through a translator

export type EmbeddingForm = 'NAT64' | 'local-use NAT64' | '6to4' | 'Teredo';

export interface CanonicalAddress {
  /** What every check judges: the IPv4 address for the folded forms, else the address itself. */
  readonly address: IpAddress;
  /** RFC 5952 text of `address` (dotted quad for IPv4): the one spelling used in messages. */
  readonly text: string;
  /** Set when an IPv6 form was folded to IPv4: the form, and the IPv6 address as given. */
  readonly folded?: { readonly form: Ipv4Form; readonly ipv6: IpAddress };
}

/** Parses an IPv4 dotted quad or any IPv6 text Node accepts; brackets and a zone are dropped. */
export function parseIp(text: string): IpAddress | undefined {
  let t = text.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const percent = t.indexOf('%');
  if (percent !== -1) t = t.slice(0, percent); // fe80::1%eth0: the zone names an interface, not a range
  const version = isIP(t);
  if (version === 4) return { version: 4, bytes: Uint8Array.from(t.split('.').map(Number)) };
  if (version === 6) return { version: 6, bytes: ipv6Bytes(t) };
  return undefined;
}

/** The canonical form of an address, or undefined when the text is not an IP address. */
export function canonicalAddress(text: string): CanonicalAddress | undefined {
  const ip = parseIp(text);
  return ip ? canonical(ip) : undefined;
}

export function canonical(ip: IpAddress): CanonicalAddress {
  const form = ipv4Form(ip);
  if (form) {
    const address: IpAddress = { version: 4, bytes: ip.bytes.slice(12) };
    return { address, text: formatIp(address), folded: { form, ipv6: ip } };
  }
  return { address: ip, text: formatIp(ip) };
}

function ipv4Form(ip: IpAddress): Ipv4Form | undefined {
  if (ip.version !== 6) return undefined;
  const b = ip.bytes;
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  if (!zeros(0, 8)) return undefined;
  if (zeros(8, 10) && b[10] === 0xff && b[11] === 0xff) return 'mapped';
  if (b[8] === 0xff && b[9] === 0xff && zeros(10, 12)) return 'translated';
  // :: (unspecified) and ::1 (loopback) are IPv6 addresses of their own, not compatible forms.
  if (zeros(8, 12) && !zeros(12, 15)) return 'compatible';
  if (zeros(8, 12) && b[15]! > 1) return 'compatible';
  return undefined;
}

/**
 * IPv4 addresses that an IPv6 address reaches through a translator or tunnel: NAT64 (64:ff9b::/96,
 * RFC 6052), local-use NAT64 (64:ff9b:1::/48, RFC 8215; read as a /96 prefix, the layout a
 * translator most often uses), 6to4 (2002:AABB:CCDD::/48, RFC 3056) and Teredo (2001::/32,
 * RFC 4380: the client's address is stored inverted in the last 32 bits).
 */
export function embeddedIpv4(ip: IpAddress): { form: EmbeddingForm; ipv4: IpAddress } | undefined {
  if (ip.version !== 6) return undefined;
  const b = ip.bytes;
  const word = (i: number) => (b[2 * i]! << 8) | b[2 * i + 1]!;
  const v4 = (bytes: ArrayLike<number>): IpAddress => ({ version: 4, bytes: Uint8Array.from(bytes) });
  if (word(0) === 0x64 && word(1) === 0xff9b && b.subarray(4, 12).every((x) => x === 0)) return { form: 'NAT64', ipv4: v4(b.subarray(12)) };
  if (word(0) === 0x64 && word(1) === 0xff9b && word(2) === 1) return { form: 'local-use NAT64', ipv4: v4(b.subarray(12)) };
  if (word(0) === 0x2002) return { form: '6to4', ipv4: v4(b.subarray(2, 6)) };
  if (word(0) === 0x2001 && word(1) === 0) return { form: 'Teredo', ipv4: v4(Array.from(b.subarray(12), (x) => x ^ 0xff)) };
  return undefined;
}

/** Dotted quad, or RFC 5952 IPv6 (lowercase, longest run of two or more zero words as ::). */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) return Array.from(ip.bytes).join('.');
  const words = Array.from({ length: 8 }, (_, i) => (ip.bytes[2 * i]! << 8) | ip.bytes[2 * i + 1]!);
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best.len < 2) return hex(words);
  return `${hex(words.slice(0, best.at))}::${hex(words.slice(best.at + best.len))}`;
}

// Only called on text isIP() accepted as IPv6, so the shape is known to be valid.
function ipv6Bytes(text: string): Uint8Array {
  let t = text.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    t = `${t.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = t.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const words = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    const value = parseInt(w, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}
