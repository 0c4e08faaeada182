import { createRequire } from 'node:module';
import { parseDomainPattern, type DomainPattern } from './domain-pattern.ts';

/**
 * parseDomainPattern plus the breadth rule: `*.com` or `*.co.uk` would hand a credential to every
 * site under a public suffix, so a wildcard must sit under one registrable domain.
 */
export function parseDomainPatternStrict(text: string): DomainPattern | string {
  const parsed = parseDomainPattern(text);
  if (typeof parsed === 'string') return parsed;
  if (parsed.wildcard && publicSuffixes().getDomain(parsed.host) === null) return `"${text}" is broader than one registrable domain`;
  return parsed;
}

type Tldts = typeof import('tldts');
let tldts: Tldts | undefined;

/**
 * tldts and its suffix list (~1 MiB of heap, held for as long as the process runs), loaded by the
 * first wildcard checked: a proxy whose config names no wildcard (grants are in the store, checked
 * when they were added) never loads it.
 */
function publicSuffixes(): Tldts {
  tldts ??= createRequire(import.meta.url)('tldts') as Tldts;
  return tldts;
}
