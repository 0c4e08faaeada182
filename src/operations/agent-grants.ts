// Changing which grants a store agent may use, for the admin API (PATCH /api/agents/{agent}) and
// the dashboard's "edit grants" (the key, lease terms and the leases on grants it keeps stay), and
// its limits (`keyway agents limits`, PATCH with `limits`).

import type { LimitsInput } from '../config/limits.ts';
import { checkLimits } from './agent-limits.ts';
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

/**
 * A store agent's limits (the config's `limits:` form), or none (null). For a config agent, the
 * config says: set `agents.ID.limits` there. Quotas counted today stay counted.
 */
export async function setAgentLimits(services: GrantServices, id: string, limits: LimitsInput | null, caller: Caller): Promise<{ limits: LimitsInput | null }> {
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config; change agents.${id}.limits there`);
  const checked = limits === null ? undefined : await checkLimits(limits, caller);
  await services.store.update((draft) => {
    const existing = draft.get<StoredAgent>(agentRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no agent "${id}" (see keyway agents list)`);
    const { limits: _old, ...rest } = existing;
    draft.set(agentRecordId(id), (checked === undefined ? rest : { ...rest, limits: checked }) satisfies StoredAgent);
  });
  return { limits: checked ?? null };
}
