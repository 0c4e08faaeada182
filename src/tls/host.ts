// Host names reach the TLS layer from two untrusted places: the CONNECT target and the client's SNI.
// Everything that ends up in a certificate or a cache key goes through here first, so one host has
// one spelling (and one cached context) and nothing odd is ever written into a SAN.
import { isIP } from 'node:net';
import { hasZoneId } from '../config/index.ts';
import { ProxyError } from '../errors/index.ts';

export { normaliseHost } from '../config/index.ts';

// Lenient on purpose: real hosts use underscores and odd hyphens; the aim is only to keep spaces,
// slashes, wildcards and non-ASCII out of the certificate (SNI carries IDNs as punycode anyway).
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;

export type HostKind = { kind: 'dns'; name: string } | { kind: 'ip'; address: string; bytes: Buffer };

/** Classify an already normalised host, refusing anything that is neither a DNS name nor an IP. */
export function classifyHost(host: string): HostKind {
  // isIP accepts `fe80::1%eth0`, but a zone id names an interface of this machine: not a SAN.
  const family = hasZoneId(host) ? 0 : isIP(host);
  if (family === 4) return { kind: 'ip', address: host, bytes: Buffer.from(host.split('.').map(Number)) };
  if (family === 6) return { kind: 'ip', address: host, bytes: ipv6Bytes(host) };
  if (DNS_NAME.test(host)) return { kind: 'dns', name: host };
  throw new ProxyError('bad_request', `cannot make a certificate for ${JSON.stringify(host)}: not a DNS name or IP address`);
}

// forge's own IPv6 parser mishandles embedded IPv4 (`::ffff:1.2.3.4`), so the SAN bytes are built here.
function ipv6Bytes(address: string): Buffer {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => {
    bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  });
  return bytes;
}
