import { isIP } from 'node:net';

/**
 * Is this text a loopback address literal: 127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6
 * (`::ffff:127.0.0.1`, also spelled `::ffff:7f00:1`)? Brackets, case and any IPv6 spelling are
 * accepted; names (`localhost`) and zone ids are not: a name is the caller's choice to trust, and
 * a zone names an interface. Deprecated forms (`::127.0.0.1`) are not loopback here: no socket
 * reports them, and egress (policy/egress.ts) refuses them as forms of their own.
 * Used for the anonymous agent's clients, the admin Host guard and http:// OAuth endpoints.
 */
export function isLoopbackAddress(text: string | undefined): boolean {
  if (!text) return false;
  let host = text.trim().toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) !== 6 || host.includes('%')) return false;
  const ipv6 = new URL(`http://[${host}]/`).hostname.slice(1, -1); // one spelling: ::ffff:7f00:1, ::1
  return ipv6 === '::1' || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(ipv6);
}
