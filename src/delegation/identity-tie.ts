import { createHash } from 'node:crypto';
import type { Config } from '../config/index.ts';

// What ties a child to a parent that has no key (a config agent only identity tokens reach,
// docs/identities.md): a child's record names its parent by id and by what proves the parent. For a
// keyed parent that is its key's hash. A keyless parent is proved by the `identities:` entries that
// map tokens to it: each issuer (with its key source and audiences) and the claims of each rule
// naming it. Their hash stands in for the key's: change who may sign in as the agent (a rule's
// claims, an issuer, its keys' source or audience), or remove the agent, and its children are no
// longer its children, as a rotated key's are not. Not the one workload's identity (iss, sub) that
// minted: a map rule admits many, any of which is the agent, and claims are matched again at every
// sign-in, not kept. An agent removed and added again with the very same mapping is the same parent,
// as one added again with the same key is.

/** The hash of the identity mapping that reaches `agentId`, or undefined when no identity maps to it. */
export function identityTie(identities: Config['identities'], agentId: string): Buffer | undefined {
  const reaching = identities
    .map((identity) => ({
      issuer: identity.issuer,
      jwks: identity.jwks ?? null,
      audience: [...identity.audience].sort(),
      rules: identity.map.filter((rule) => rule.agent === agentId).map((rule) => canonical(rule.claims)),
    }))
    .filter((identity) => identity.rules.length > 0)
    .sort((a, b) => a.issuer.localeCompare(b.issuer));
  if (reaching.length === 0) return undefined;
  return createHash('sha256').update('keyway identity tie v1\0').update(canonical(reaching)).digest();
}

/** JSON with every object's keys sorted: the same mapping written in another order is the same tie. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
