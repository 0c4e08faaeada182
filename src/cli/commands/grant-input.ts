// What `grants add` and `grants set` share: reading domains and injection from flags, and the
// warning for domains another grant already covers.
import { parseDomainPatternStrict } from '../../config/domain-breadth.ts';
import { parseDomainPattern, type DomainPattern, type GrantType, type InjectConfig } from '../../config/index.ts';
import type { GrantListing } from '../../credentials/grant-listing.ts';
import { injectorFor } from '../../credentials/injectors/index.ts';
import { patternsOverlap } from '../../policy/domains.ts';
import type { Args } from '../args.ts';
import { usageError } from '../io.ts';

/** `--domains` checked (syntax and breadth); undefined when the flag is absent. */
export function domainsOption(args: Args): string[] | undefined {
  const domains = args.list('domains');
  if (domains === undefined) return undefined;
  if (domains.length === 0) throw usageError('--domains: expected at least one domain');
  for (const d of domains) {
    const parsed = parseDomainPatternStrict(d);
    if (typeof parsed === 'string') throw usageError(`--domains: ${parsed}`);
  }
  return domains;
}

/** Refuses an injection this grant type cannot use, in the injector's own words. */
export function checkInjection(type: GrantType, inject: InjectConfig): void {
  if (inject.format !== undefined && !inject.format.includes('{secret}')) throw usageError('--format must contain {secret}');
  try {
    injectorFor(type, inject);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

/** True when the injection says something (an empty one means the type's default). */
export const hasInjection = (inject: InjectConfig | undefined): inject is InjectConfig =>
  inject !== undefined && (inject.header !== undefined || inject.query !== undefined || inject.format !== undefined);

/**
 * One line per other grant whose domains overlap these, saying how a request will then choose;
 * empty when none does.
 */
export function overlapWarnings(id: string, domains: readonly string[], others: readonly GrantListing[]): string[] {
  const mine = parsed(domains);
  const clashing = others
    .filter((g) => g.id !== id && g.status !== 'revoked')
    .map((g) => ({ id: g.id, shared: g.domains.filter((d) => parsed([d]).some((p) => mine.some((m) => patternsOverlap(m, p)))) }))
    .filter((g) => g.shared.length > 0);
  if (clashing.length === 0) return [];
  return [
    ...clashing.map((g) => `warning: grant "${id}" overlaps grant "${g.id}" on ${g.shared.join(', ')}`),
    `  a request to a host both cover uses the grant its agent is bound to (keyway agents add ID --grants ${id}); ` +
      `an agent that may use both must send the header "X-Keyway-Grant: ${id}" (or another id), or it gets 400 grant_ambiguous`,
  ];
}

function parsed(domains: readonly string[]): DomainPattern[] {
  return domains.map(parseDomainPattern).filter((p): p is DomainPattern => typeof p !== 'string');
}
