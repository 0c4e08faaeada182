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

/**
 * One spelling per host, for every place a host is compared or keyed (domain patterns, proxy
 * targets, TLS leaves and their cache): lowercase, no surrounding space, IPv6 brackets or trailing
 * dot, and an IPv6 literal in its one WHATWG URL spelling (RFC 5952: `[FD00:0::1]` -> `fd00::1`),
 * so a grant written one way matches a CONNECT written another. A zone id (`fe80::1%eth0`) is left
 * as written, unnormalised: it names an interface of this machine, so every caller refuses it (the
 * pattern and target grammars have no `%`, and tls/host.ts classifyHost refuses it).
 */
export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (isIP(h) === 6 && !h.includes('%')) h = new URL(`http://[${h}]/`).hostname.slice(1, -1);
  return h;
}

/** An IPv6 zone id (`fe80::1%eth0`): local to this machine, never a destination keyway names. */
export function hasZoneId(host: string): boolean {
  return host.includes('%');
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
  if (isIP(raw) !== 0) return { text, host: raw, wildcard: false, port };
  const wildcard = raw.startsWith('*.');
  const host = wildcard ? raw.slice(2) : raw;
  if (host.includes('*') || !isValidHostname(host)) return `"${text}" is not a valid host pattern`;
  return { text, host, wildcard, port };
}
