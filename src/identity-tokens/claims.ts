// Mapping a verified token's claims to one of keyway's agents (config identities[].map).
//
// A rule's claim names a top-level claim (`sub`, `repository`), or a nested one by a dotted path
// (`kubernetes.io.namespace`: the claim `kubernetes.io`, then its `namespace`); a key that itself
// holds dots is found whole first. A value is a glob: `*` is any run of characters, `/` and `:`
// included (`repo:acme/api:*`); every other character is literal, and the match is whole and
// case-sensitive. A claim that is a list (`aud`, `groups`) matches when one element does; numbers
// and booleans match by their JSON spelling; an object or a missing claim matches nothing.

export interface ClaimRule {
  readonly claims: Readonly<Record<string, string>>;
  readonly agent: string;
}

export interface CompiledClaimRule {
  readonly agent: string;
  readonly tests: ReadonlyArray<{ readonly path: string; readonly pattern: RegExp }>;
}

export function compileClaimRules(rules: readonly ClaimRule[]): CompiledClaimRule[] {
  return rules.map((rule) => ({
    agent: rule.agent,
    tests: Object.entries(rule.claims).map(([path, glob]) => ({ path, pattern: claimGlob(glob) })),
  }));
}

/** The agent of the first rule whose every claim matches, or undefined. */
export function mapClaims(rules: readonly CompiledClaimRule[], claims: Readonly<Record<string, unknown>>): string | undefined {
  for (const rule of rules) {
    if (rule.tests.every((test) => claimMatches(claimAt(claims, test.path), test.pattern))) return rule.agent;
  }
  return undefined;
}

export function claimGlob(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[\\^$.|?+()[\]{}]/g, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(`^${body}$`, 'u');
}

function claimMatches(value: unknown, pattern: RegExp): boolean {
  if (typeof value === 'string') return pattern.test(value);
  if (typeof value === 'number' || typeof value === 'boolean') return pattern.test(String(value));
  if (Array.isArray(value))
    return value.some((item) => (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') && pattern.test(String(item)));
  return false;
}

/** The claim at a dotted path, the longest key that matches at each level first (`kubernetes.io` before `kubernetes`). */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  const parts = path.split('.');
  for (let take = parts.length - 1; take >= 1; take--) {
    const key = parts.slice(0, take).join('.');
    const inner = Object.hasOwn(claims, key) ? claims[key] : undefined;
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) continue;
    const found = claimAt(inner as Record<string, unknown>, parts.slice(take).join('.'));
    if (found !== undefined) return found;
  }
  return undefined;
}
