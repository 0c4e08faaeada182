import { networkInterfaces } from 'node:os';

// Addresses that reach this machine: loopback, unspecified, and every interface's own address.
let interfaceAddresses: Set<string> | undefined;

export function isLocalAddress(address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (plain.startsWith('127.') || plain === '::1' || plain === '0.0.0.0' || plain === '::') return true;
  interfaceAddresses ??= new Set(
    Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address)
      .filter((a): a is string => a !== undefined),
  );
  return interfaceAddresses.has(plain);
}
