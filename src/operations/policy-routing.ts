// What the store adds to the config for the policy proofs (`keyway policy`, /api/policy): the grants
// and agents made at run time, as ids, domains and grant lists. The proofs never import credentials
// (as policy/access.ts does not), so the store is read here; no secret field is touched.

import { parseDomainPattern, type DomainPattern } from '../config/domain-pattern.ts';
import { AGENT_PREFIX, type StoredAgent } from '../credentials/agent-record.ts';
import { GRANT_PREFIX, type StoredGrant } from '../credentials/grant-record.ts';
import type { RecordSource } from '../credentials/store/credential-store.ts';
import type { StoredRouting } from '../proofs/judge.ts';

export function storedRouting(store: RecordSource): StoredRouting {
  const grants = [...store.entries<StoredGrant>(GRANT_PREFIX)].map(([, g]) => ({
    id: g.id,
    domains: g.domains.map(parseDomainPattern).filter((d): d is DomainPattern => typeof d !== 'string'),
  }));
  const agents = new Map<string, readonly string[] | undefined>();
  for (const [, a] of store.entries<StoredAgent>(AGENT_PREFIX)) agents.set(a.id, a.grants);
  return { grants, agents };
}
