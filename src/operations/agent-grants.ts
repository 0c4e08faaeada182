// Changing which grants a store agent may use, for the admin API (PATCH /api/agents/{agent}) and
// the dashboard's "edit grants". The key, lease terms and the leases on grants it keeps stay.

import { agentRecordId, type StoredAgent } from '../credentials/agent-record.ts';
import { agentLeasePrefix, type LeaseRecord } from '../credentials/lease-record.ts';
import { KeywayError } from '../errors/index.ts';
import { checkGrantsExist } from './agents.ts';
import { fieldName, usage, type Caller } from './fields.ts';
import type { GrantServices } from './grants.ts';

/** What the agent may use from now on: these grant ids, or `['*']` for every grant (as listings show it). */
export async function setAgentGrants(services: GrantServices, id: string, grants: readonly string[], caller: Caller): Promise<{ grants: string[] }> {
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config; change agents.${id}.grants there`);
  const every = grants.length === 1 && grants[0] === '*';
  if (!every && grants.includes('*')) throw usage(`${fieldName('grants', caller)}: "*" (every grant) stands alone`);
  const wanted = every ? undefined : [...new Set(grants)];
  if (wanted !== undefined) checkGrantsExist(services, wanted, caller);
  await services.store.update((draft) => {
    const existing = draft.get<StoredAgent>(agentRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no agent "${id}" (see keyway agents list)`);
    draft.set(agentRecordId(id), { ...existing, grants: wanted } satisfies StoredAgent);
    // A lease on a grant taken away must not come back to life if the grant is given again later.
    if (wanted !== undefined) {
      for (const [leaseId, lease] of draft.entries<LeaseRecord>(agentLeasePrefix(id))) if (!wanted.includes(lease.grant)) draft.delete(leaseId);
    }
  });
  return { grants: wanted ?? ['*'] };
}
