import { isIP } from 'node:net';
import { isValidHostname, normaliseHost } from '../config/index.ts';
import { ProxyError } from '../errors/index.ts';
import { formatIp, parseIp } from '../policy/address.ts';

export interface Target {
  /**
   * Normalised: lowercase, no brackets, no trailing dot; an IPv6 literal in its RFC 5952 spelling
   * (as WHATWG URLs write it), so `[0:0:0:0:0:ffff:7f00:0001]`, `[::ffff:127.0.0.1]` and a Host
   * header naming either are one target. Not folded to IPv4: the host stays what the agent named.
   */
  host: string;
  port: number;
}

/** `host:port` of a CONNECT, or of a Host header (port optional there). */
export function parseAuthority(text: string, defaultPort?: number): Target {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/?#@\s]+)(?::(\d{1,5}))?$/.exec(text);
  const bad = () => new ProxyError('bad_request', 'the target is not host:port');
  if (!match) throw bad();
  const host = normaliseHost(match[1]!);
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port === undefined || port < 1 || port > 65535) throw bad();
  if (match[1]!.startsWith('[') ? isIP(host) !== 6 : !(isIP(host) === 4 || isValidHostname(host))) throw bad();
  const ip = isIP(host) === 6 ? parseIp(host) : undefined;
  return { host: ip ? formatIp(ip) : host, port };
}

/**
 * `host:port`, with an IPv6 literal bracketed. A normalised target's host holds a colon only when it
 * is IPv6 (names and IPv4 never do): checked so, as this runs on every request, and isIP's pattern
 * showed in profiles.
 */
export function formatAuthority({ host, port }: Target): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An absolute-form request target, `http://host[:port]/path?query`. */
export function parseAbsoluteUrl(text: string): { target: Target; path: string; scheme: 'http' | 'https' } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProxyError('bad_request', 'keyway is a proxy: send an absolute http:// URL or CONNECT host:port');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxyError('bad_request', `unsupported scheme ${url.protocol}`);
  }
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const target = parseAuthority(url.host, scheme === 'https' ? 443 : 80);
  return { target, path: `${url.pathname}${url.search}`, scheme };
}
