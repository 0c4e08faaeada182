// Checks on a grant that its fields alone do not settle (those are grant-schema.ts's), shared by
// `keyway grants add|set` and the admin API: whether the grant's type can use the injection, and
// the warning for domains another grant already covers.
import { parseDomainPattern, type DomainPattern, type GrantType, type InjectConfig } from '../config/index.ts';
import type { GrantListing } from '../credentials/grant-listing.ts';
import { injectorFor } from '../credentials/types/index.ts';
import { patternsOverlap } from '../policy/domains.ts';
import { usage } from './fields.ts';

/** Refuses an injection this grant type cannot use, in the injector's own words (its fields are checked by grant-schema.ts). */
export function checkInjection(type: GrantType, inject: InjectConfig): void {
  try {
    injectorFor(type, inject);
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** True when the injection says something (an empty one means the type's default). */
export const hasInjection = (inject: InjectConfig | undefined): inject is InjectConfig =>
  inject !== undefined &&
  (inject.header !== undefined || inject.query !== undefined || inject.format !== undefined || (inject.body !== undefined && inject.body !== false));

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
