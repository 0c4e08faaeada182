import { isIP } from 'node:net';

/**
 * A parsed `domains` entry: `api.github.com`, `*.githubusercontent.com`, either with an optional
 * `:port`, or an IP literal (`10.1.2.3:8443`, `[fd00::1]:443`). Matching lives in policy/domains.ts.
 */
export interface DomainPattern {
  /** As written, for messages and listings. */
  text: string;
  /** Lowercase host, or for a wildcard the suffix after `*.`. */
  host: string;
  wildcard: boolean;
  /** undefined: any port. */
  port: number | undefined;
}

export function normaliseHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function isValidHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  return host.split('.').every((label) => LABEL.test(label) || /^[a-z0-9_-]{1,63}$/.test(label));
}

/**
 * Returns the pattern, or a reason it is refused. The public-suffix check for wildcards is in
 * domain-breadth.ts, applied where patterns come in (config, CLI), so the proxy process never loads
 * the suffix list to re-read patterns it stored.
 */
export function parseDomainPattern(text: string): DomainPattern | string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!match) return `"${text}" is not a host, *.domain or host:port`;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return `"${text}" has a port outside 1-65535`;
  const raw = normaliseHost(match[1] ?? '');
  if (isIP(raw) === 4) return { text, host: raw, wildcard: false, port };
  if (isIP(raw) === 6) return { text, host: ipv6Spelling(raw), wildcard: false, port };
  const wildcard = raw.startsWith('*.');
  const host = wildcard ? raw.slice(2) : raw;
  if (host.includes('*') || !isValidHostname(host)) return `"${text}" is not a valid host pattern`;
  return { text, host, wildcard, port };
}

/**
 * One spelling per IPv6 address, the WHATWG URL one that the proxy's targets use too (see
 * proxy/target.ts), so a grant written `[fd00:0::1]` matches a CONNECT to `[fd00::0:1]`.
 */
function ipv6Spelling(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}
