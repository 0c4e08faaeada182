import { getDomain } from 'tldts';
import { parseDomainPattern, type DomainPattern } from './domain-pattern.ts';

/**
 * parseDomainPattern plus the breadth rule: `*.com` or `*.co.uk` would hand a credential to every
 * site under a public suffix, so a wildcard must sit under one registrable domain.
 */
export function parseDomainPatternStrict(text: string): DomainPattern | string {
  const parsed = parseDomainPattern(text);
  if (typeof parsed === 'string') return parsed;
  if (parsed.wildcard && getDomain(parsed.host) === null) return `"${text}" is broader than one registrable domain`;
  return parsed;
}
