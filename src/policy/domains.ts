import type { DomainPattern } from '../config/domain-pattern.ts';

/** `host` must already be normalised (lowercase, no brackets, no trailing dot). */
export function patternMatches(pattern: DomainPattern, host: string, port: number): boolean {
  if (pattern.port !== undefined && pattern.port !== port) return false;
  if (!pattern.wildcard) return host === pattern.host;
  // Any subdomain at any depth, never the apex itself.
  return host.length > pattern.host.length + 1 && host.endsWith(`.${pattern.host}`);
}

/**
 * True when some host and port match both patterns: two grants on overlapping domains make a
 * request on that host ambiguous unless the agent's binding or `X-Keyway-Grant` picks one.
 */
export function patternsOverlap(a: DomainPattern, b: DomainPattern): boolean {
  if (a.port !== undefined && b.port !== undefined && a.port !== b.port) return false;
  const under = (host: string, suffix: string) => host.endsWith(`.${suffix}`);
  if (!a.wildcard && !b.wildcard) return a.host === b.host;
  if (a.wildcard && b.wildcard) return a.host === b.host || under(a.host, b.host) || under(b.host, a.host);
  const [exact, wild] = a.wildcard ? [b, a] : [a, b];
  return under(exact.host, wild.host);
}
