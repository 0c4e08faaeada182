import { BlockList, isIP } from 'node:net';

// The address forms the Egress suite throws at keyway, and the test's own statement of what must
// be refused. The oracle here is written independently of src/policy (bigint arithmetic and
// Node's BlockList), so a shared mistake in keyway's byte matching cannot agree with itself.

/** Ranges keyway must refuse by default: the contract, restated (IANA special-purpose registries). */
export const REFUSED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
export const REFUSED_V6 = [
  '::/128',
  '::1/128',
  '::/96',
  '::ffff:0:0:0/96',
  '64:ff9b:1::/48',
  '100::/64',
  '100:0:0:1::/64',
  '2001::/23',
  '2001:db8::/32',
  '3fff::/20',
  '5f00::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];
/** Everything outside global unicast is reserved, except the NAT64 well-known prefix. */
const ROUTED_V6 = ['2000::/3', '64:ff9b::/96'];

const list = (ranges: string[], family: 'ipv4' | 'ipv6') => {
  const b = new BlockList();
  for (const r of ranges) {
    const [net, prefix] = r.split('/') as [string, string];
    b.addSubnet(net, Number(prefix), family);
  }
  return b;
};
const refused4 = list(REFUSED_V4, 'ipv4');
const refused6 = list(REFUSED_V6, 'ipv6');
const routed6 = list(ROUTED_V6, 'ipv6');
const mapped6 = list(['::ffff:0:0/96'], 'ipv6');

/**
 * The oracle for plain addresses and range neighbours: refused when inside a listed range, or an
 * IPv6 address outside the routed space. (BlockList judges ::ffff:a.b.c.d by the IPv4 rules.)
 * Embedded forms (NAT64, 6to4, Teredo) are generated as always-refused cases instead.
 */
export function oracleRefuses(address: string): boolean {
  const v = isIP(address);
  if (v === 4) return refused4.check(address, 'ipv4');
  if (refused6.check(address, 'ipv6') || refused4.check(address, 'ipv6')) return true;
  return !mapped6.check(address, 'ipv6') && !routed6.check(address, 'ipv6');
}

// --- bigint helpers: an address as a number, and back ---------------------------------------

export function v4ToInt(a: string): bigint {
  return a.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}
export function intToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}
export function v6ToInt(text: string): bigint {
  // WHATWG URL hosts are canonical (no dotted tail): expand the :: and read the words.
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head = '', tail] = host.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const words = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return words.reduce((n, w) => (n << 16n) | BigInt(parseInt(w, 16)), 0n);
}
export function intToV6(n: bigint, expanded = false): string {
  const words = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  return words.map((w) => (expanded ? w.toString(16).padStart(4, '0') : w.toString(16))).join(':');
}

function edges(cidr: string): { first: bigint; last: bigint; bits: 32 | 128 } {
  const [net, prefix] = cidr.split('/') as [string, string];
  const bits = isIP(net) === 4 ? 32 : 128;
  const base = bits === 32 ? v4ToInt(net) : v6ToInt(net);
  const size = 1n << BigInt(bits - Number(prefix));
  return { first: base, last: base + size - 1n, bits };
}

// --- the forms -------------------------------------------------------------------------------

export interface AddressForm {
  address: string;
  /** What the form is, for test names. */
  what: string;
  refused: boolean;
}

const hex32 = (n: bigint) => `${((n >> 16n) & 0xffffn).toString(16)}:${(n & 0xffffn).toString(16)}`;

/** One IPv4 address written in every IPv6 form that names it; all must be refused if it is. */
export function ipv6FormsOf(v4: string): Array<{ address: string; what: string }> {
  const n = v4ToInt(v4);
  const pad = (x: bigint) => x.toString(16).padStart(4, '0');
  return [
    { address: `::ffff:${v4}`, what: 'mapped' },
    { address: `::ffff:${hex32(n)}`, what: 'mapped, hex' },
    { address: `0000:0000:0000:0000:0000:ffff:${pad(n >> 16n)}:${pad(n & 0xffffn)}`, what: 'mapped, fully expanded' },
    { address: `0:0:0:0:0:FFFF:${v4}`, what: 'mapped, uppercase' },
    { address: `::${v4}`, what: 'IPv4-compatible' },
    { address: `::ffff:0:${hex32(n)}`, what: 'IPv4-translated' },
    { address: `64:ff9b::${v4}`, what: 'NAT64' },
    { address: `64:ff9b:1::${hex32(n)}`, what: 'local-use NAT64' },
    { address: `2002:${hex32(n)}::1`, what: '6to4' },
    { address: `2001:0:4136:e378:8000:63bf:${hex32(n ^ 0xffffffffn)}`, what: 'Teredo' },
  ];
}

/** Both edges of every refused range (refused), and the neighbour just outside each (per the oracle). */
export function rangeEdges(): AddressForm[] {
  const forms: AddressForm[] = [];
  for (const cidr of [...REFUSED_V4, ...REFUSED_V6]) {
    const { first, last, bits } = edges(cidr);
    const max = (1n << BigInt(bits)) - 1n;
    const text = (n: bigint) => (bits === 32 ? intToV4(n) : intToV6(n));
    forms.push({ address: text(first), what: `first of ${cidr}`, refused: true });
    if (last !== first) forms.push({ address: text(last), what: `last of ${cidr}`, refused: true });
    for (const [n, what] of [
      [first - 1n, 'below'],
      [last + 1n, 'above'],
    ] as const) {
      if (n < 0n || n > max) continue;
      forms.push({ address: text(n), what: `just ${what} ${cidr}`, refused: oracleRefuses(text(n)) });
    }
  }
  return forms;
}

export const METADATA_V4 = '169.254.169.254';
export const METADATA_V6 = 'fd00:ec2::254';

/** The metadata addresses in every IP-literal encoding we can produce. */
export function metadataLiterals(): AddressForm[] {
  const v6 = v6ToInt(METADATA_V6);
  return [
    { address: METADATA_V4, what: 'metadata', refused: true },
    ...ipv6FormsOf(METADATA_V4).map((f) => ({ address: f.address, what: `metadata, ${f.what}`, refused: true })),
    { address: METADATA_V6, what: 'IPv6 metadata', refused: true },
    { address: intToV6(v6, true), what: 'IPv6 metadata, fully expanded', refused: true },
    { address: intToV6(v6), what: 'IPv6 metadata, uncompressed', refused: true },
    { address: 'FD00:EC2:0::254', what: 'IPv6 metadata, uppercase', refused: true },
    { address: 'fd00:ec2::254%eth0', what: 'IPv6 metadata with a zone', refused: true },
  ];
}

/**
 * Host text a system resolver accepts as a number (inet_aton: decimal, octal, hex, short forms)
 * and what it means. keyway treats these as names and decides on the address the lookup returns.
 */
export const NUMERIC_NAMES: Array<{ name: string; means: string }> = [
  { name: '2852039166', means: METADATA_V4 },
  { name: '0xa9fea9fe', means: METADATA_V4 },
  { name: '0xA9FEA9FE', means: METADATA_V4 },
  { name: '025177524776', means: METADATA_V4 },
  { name: '0251.0376.0251.0376', means: METADATA_V4 },
  { name: '0xa9.0xfe.0xa9.0xfe', means: METADATA_V4 },
  { name: '169.254.43518', means: METADATA_V4 },
  { name: '169.16689662', means: METADATA_V4 },
  { name: '0251.254.0xa9.254', means: METADATA_V4 },
  { name: '2130706433', means: '127.0.0.1' },
  { name: '0x7f000001', means: '127.0.0.1' },
  { name: '017700000001', means: '127.0.0.1' },
  { name: '0177.0.0.1', means: '127.0.0.1' },
  { name: '127.1', means: '127.0.0.1' },
  { name: '0x7f.1', means: '127.0.0.1' },
  { name: '167772161', means: '10.0.0.1' },
  { name: '0xa.0.0.1', means: '10.0.0.1' },
  { name: '3232235521', means: '192.168.0.1' },
  { name: '0', means: '0.0.0.0' },
];

/**
 * inet_aton, restated for the test: the address a numeric name means, or undefined. Only names
 * it accepts are ever handed to the system resolver (which parses them without asking DNS).
 */
export function inetAton(name: string): string | undefined {
  const parts = name.split('.');
  if (parts.length > 4) return undefined;
  const values: bigint[] = [];
  for (const p of parts) {
    if (/^0x[0-9a-f]+$/i.test(p)) values.push(BigInt(p));
    else if (/^0[0-7]*$/.test(p)) values.push(p === '0' ? 0n : BigInt(`0o${p.slice(1)}`));
    else if (/^[1-9][0-9]*$/.test(p)) values.push(BigInt(p));
    else return undefined;
  }
  const lastBits = BigInt(8 * (5 - values.length));
  let n = 0n;
  for (let i = 0; i < values.length - 1; i++) {
    if (values[i]! > 255n) return undefined;
    n |= values[i]! << BigInt(8 * (3 - i));
  }
  const last = values[values.length - 1]!;
  if (last >= 1n << lastBits) return undefined;
  return intToV4(n | last);
}
