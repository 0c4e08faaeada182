// Checks on what a grant is made or changed with, shared by `keyway grants add|set` and the admin
// API: domains (syntax and breadth), injection, labels, and the warning for domains another grant
// already covers.
import { unsafeDisplayText } from '../config/display-text.ts';
import { parseDomainPatternStrict } from '../config/domain-breadth.ts';
import { parseDomainPattern, type DomainPattern, type GrantType, type InjectConfig } from '../config/index.ts';
import type { GrantListing } from '../credentials/grant-listing.ts';
import { injectorFor } from '../credentials/injectors/index.ts';
import { patternsOverlap } from '../policy/domains.ts';
import { fieldName, usage, type Caller } from './fields.ts';

/** Domains checked (syntax and breadth); undefined when not given. */
export function checkDomains(domains: readonly string[] | undefined, caller: Caller): string[] | undefined {
  if (domains === undefined) return undefined;
  const name = fieldName('domains', caller);
  if (domains.length === 0) throw usage(`${name}: expected at least one domain`);
  for (const d of domains) {
    const parsed = parseDomainPatternStrict(d);
    if (typeof parsed === 'string') throw usage(`${name}: ${parsed}`);
  }
  return [...domains];
}

/** Refuses an injection this grant type cannot use, in the injector's own words. */
export function checkInjection(type: GrantType, inject: InjectConfig, caller: Caller): void {
  if (inject.format !== undefined && !inject.format.includes('{secret}')) throw usage(`${fieldName('inject.format', caller)} must contain {secret}`);
  const unsafe = inject.format === undefined ? undefined : unsafeDisplayText(inject.format);
  if (unsafe) throw usage(`${fieldName('inject.format', caller)}: ${unsafe}`);
  try {
    injectorFor(type, inject);
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** True when the injection says something (an empty one means the type's default). */
export const hasInjection = (inject: InjectConfig | undefined): inject is InjectConfig =>
  inject !== undefined && (inject.header !== undefined || inject.query !== undefined || inject.format !== undefined);

const LABEL_KEY = /^[a-z0-9][a-z0-9._/-]{0,62}$/;
const MAX_LABELS = 32;
const MAX_LABEL_VALUE = 256;

/**
 * Labels: a small free-form map for people and scripts (`team: payments`). Not secret, so never a
 * place for one: they are shown in every listing.
 */
export function checkLabels(labels: unknown, caller: Caller): Record<string, string> | undefined {
  if (labels === undefined) return undefined;
  const name = caller === 'cli' ? '--label' : 'labels';
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw usage(`${name}: expected an object of string values`);
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw usage(`${name}: at most ${MAX_LABELS} labels`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries.sort(([a], [b]) => a.localeCompare(b))) {
    if (!LABEL_KEY.test(key)) throw usage(`${name}: a label name is a-z, 0-9, ".", "_", "/" and "-" (up to 63 characters)`);
    if (typeof value !== 'string' || value.length > MAX_LABEL_VALUE) throw usage(`${name} ${key}: expected a string of at most ${MAX_LABEL_VALUE} characters`);
    const unsafe = unsafeDisplayText(value);
    if (unsafe) throw usage(`${name} ${key}: ${unsafe}`);
    out[key] = value;
  }
  return out;
}

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
