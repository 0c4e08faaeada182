import { canonicalAddress } from './address.ts';
import { configRanges, firstMatch, type IpRange } from './ip-ranges.ts';

// Source address ranges for rules: `10.1.0.0/16`, `2001:db8::/32`, or a single address. A client
// address is folded to its canonical form first (address.ts), so an IPv4-mapped client
// (`::ffff:10.1.2.3`, as a dual-stack listener reports IPv4 peers) is the IPv4 address, and a
// range written in mapped form (`::ffff:10.1.0.0/112`) is the IPv4 range.

export interface AddressSet {
  readonly source: readonly string[];
  has(address: string): boolean;
}

/** Builds the set, or returns the first error message. */
export function compileAddressSet(ranges: readonly string[]): AddressSet | string {
  const list: IpRange[] = [];
  for (const text of ranges) {
    const parsed = configRanges(text);
    if (typeof parsed === 'string') return parsed;
    list.push(...parsed);
  }
  return {
    source: [...ranges],
    has(address) {
      const c = canonicalAddress(address); // drops a zone (`fe80::1%eth0`): it says nothing about the range
      return c !== undefined && firstMatch(list, c.address) !== undefined;
    },
  };
}
