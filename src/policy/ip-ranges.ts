import { parseCidr } from '../config/cidr.ts';
import { parseIp, type IpAddress } from './address.ts';

// Prefix matching on bytes, for addresses already in canonical form (address.ts). Node's BlockList
// is not used: it folds ::ffff:a.b.c.d in every spelling, but not the compatible (::a.b.c.d) or
// translated (::ffff:0:a.b.c.d) forms, and it matches the IPv6 and IPv4 spaces into each other in
// ways a caller cannot choose. Here an IPv4 range matches IPv4 addresses only and an IPv6 range
// IPv6 only; the folding happens once, in canonical(), before any range is asked.

export interface IpRange<L = undefined> {
  readonly address: IpAddress;
  readonly prefix: number;
  /** What the range is, for messages. */
  readonly label: L;
}

export function inRange(ip: IpAddress, range: { address: IpAddress; prefix: number }): boolean {
  if (ip.version !== range.address.version) return false;
  const full = range.prefix >> 3;
  for (let i = 0; i < full; i++) if (ip.bytes[i] !== range.address.bytes[i]) return false;
  const rest = range.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[full]! & mask) === (range.address.bytes[full]! & mask);
}

/** `10.0.0.0/8` or `fc00::/7` or a single address, for built-in tables; throws on a typo. */
export function range<L>(cidr: string, label: L): IpRange<L> {
  const parsed = parseCidr(cidr);
  const address = typeof parsed === 'string' ? undefined : parseIp(parsed.net);
  if (typeof parsed === 'string' || !address) throw new Error(`bad built-in range ${cidr}`);
  return { address, prefix: parsed.prefix, label };
}

const MAPPED_PREFIX: IpRange = range('::ffff:0:0/96', undefined);

/**
 * A range from the config, as the ranges it covers after folding: `::ffff:10.0.0.0/104` is
 * 10.0.0.0/8, and an IPv6 range that contains all of ::ffff:0:0/96 (`::/0`) covers all of IPv4
 * too, because a mapped address is judged as its IPv4 address.
 */
export function configRanges(cidr: string): Array<IpRange> | string {
  const parsed = parseCidr(cidr);
  if (typeof parsed === 'string') return parsed;
  const address = parseIp(parsed.net);
  if (!address) return `"${cidr}" is not an address`;
  const given: IpRange = { address, prefix: parsed.prefix, label: undefined };
  if (address.version === 4) return [given];
  if (parsed.prefix <= 96 && inRange(MAPPED_PREFIX.address, given))
    return [given, { address: { version: 4, bytes: new Uint8Array(4) }, prefix: 0, label: undefined }];
  if (parsed.prefix > 96 && inRange(address, MAPPED_PREFIX))
    return [given, { address: { version: 4, bytes: address.bytes.slice(12) }, prefix: parsed.prefix - 96, label: undefined }];
  return [given];
}

/** The first range containing the address, in table order (put narrower ranges first). */
export function firstMatch<L>(ranges: readonly IpRange<L>[], ip: IpAddress): IpRange<L> | undefined {
  return ranges.find((r) => inRange(ip, r));
}
