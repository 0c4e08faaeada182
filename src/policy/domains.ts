import type { DomainPattern } from '../config/domain-pattern.ts';

/** `host` must already be normalised (lowercase, no brackets, no trailing dot). */
export function patternMatches(pattern: DomainPattern, host: string, port: number): boolean {
  if (pattern.port !== undefined && pattern.port !== port) return false;
  if (!pattern.wildcard) return host === pattern.host;
  // Any subdomain at any depth, never the apex itself.
  return host.length > pattern.host.length + 1 && host.endsWith(`.${pattern.host}`);
}
