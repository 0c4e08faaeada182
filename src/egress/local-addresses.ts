import { networkInterfaces } from 'node:os';
import { canonicalAddress, formatIp } from '../policy/address.ts';
import { layersOf } from '../policy/egress.ts';
import { inRange, range } from '../policy/ip-ranges.ts';

// Addresses that reach this machine: loopback, "this network" (Linux connects 0.0.0.0 to this
// host), unspecified, and every interface's own address. Decided on the canonical form, and on
// every address an address names (address.ts), so ::ffff:7f00:1, 0:0:0:0:0:ffff:7f00:0001 and
// ::127.0.0.1 are all 127.0.0.1 here.
const ALWAYS_LOCAL = [range('127.0.0.0/8', undefined), range('0.0.0.0/8', undefined), range('::1/128', undefined), range('::/128', undefined)];

let interfaceAddresses: Set<string> | undefined;

export function isLocalAddress(address: string): boolean {
  const c = canonicalAddress(address);
  if (!c) return false;
  interfaceAddresses ??= new Set(
    Object.values(networkInterfaces())
      .flat()
      .map((i) => (i ? canonicalAddress(i.address)?.text : undefined))
      .filter((a): a is string => a !== undefined),
  );
  return layersOf(c.address).some(({ ip }) => ALWAYS_LOCAL.some((r) => inRange(ip, r)) || interfaceAddresses!.has(formatIp(ip)));
}
