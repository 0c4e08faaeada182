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

/**
 * An absolute-form request target (RFC 9112 3.2.2), `scheme://authority` and the rest as sent, or
 * undefined for any other form. The one reading of absolute form, for plain requests to the proxy
 * and for requests inside a tunnel alike: no URL parser, which would resolve dots, turn backslashes
 * into slashes and percent-decode the host its own way before the rules and the path stage see them.
 */
export function splitAbsoluteForm(rawTarget: string): { scheme: string; authority: string; rest: string } | undefined {
  const absolute = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/.exec(rawTarget);
  if (!absolute) return undefined;
  return { scheme: absolute[1]!.toLowerCase(), authority: absolute[2]!, rest: rawTarget.slice(absolute[0].length) };
}

/** An absolute-form target's rest as an origin-form target: `/` when it names none. */
export function originFormOf(rest: string): string {
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/**
 * A plain request to the proxy, `http://host[:port]/path?query`: its target, and its path as sent
 * (the path stage normalises it, or refuses it, as it does inside a tunnel).
 */
export function parseAbsoluteUrl(text: string): { target: Target; path: string; scheme: 'http' | 'https' } {
  const split = splitAbsoluteForm(text);
  if (!split) throw new ProxyError('bad_request', 'keyway is a proxy: send an absolute http:// URL or CONNECT host:port');
  if (split.scheme !== 'http' && split.scheme !== 'https') throw new ProxyError('bad_request', 'unsupported scheme: send http:// or CONNECT');
  const scheme = split.scheme;
  const named = parseAuthority(split.authority, scheme === 'https' ? 443 : 80);
  return { target: { host: numericHostAsIp(named.host), port: named.port }, path: originFormOf(split.rest), scheme };
}

/**
 * A name a URL parser reads as an IPv4 address (`2852039166`, `0x7f.1`, `0251.0376.0251.0376`), as
 * that address. A plain request is forwarded to an origin URL, and undici's URL parser would turn
 * such a name into the address and dial it with no lookup: the egress check must see the address.
 */
function numericHostAsIp(host: string): string {
  if (!NUMERIC_LOOKING.test(host)) return host;
  try {
    const hostname = new URL(`http://${host}/`).hostname;
    return isIP(hostname) === 4 ? hostname : host;
  } catch {
    return host;
  }
}

const NUMERIC_LOOKING = /^[0-9a-fx.]+$/i;
