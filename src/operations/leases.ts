// Leases, the second clock: grant or renew (capped by max_lease_ttl) and revoke an agent's lease on
// a grant. One implementation for `keyway agents lease|revoke-lease` and the admin API.

import { formatDuration } from '../config/index.ts';
import { agentTerms, type AgentTerms } from '../credentials/agents.ts';
import { listGrants, type GrantListing } from '../credentials/grant-listing.ts';
import { leaseRecordId, type LeaseRecord } from '../credentials/lease-record.ts';
import { KeywayError } from '../errors/index.ts';
import { leaseRequired, leaseStatus, renewLease, revokeLease, type LeaseState } from '../policy/leases.ts';
import { durationInput, type Caller } from './fields.ts';
import type { GrantServices } from './grants.ts';

export interface AgentAccess {
  grant: string;
  lease: LeaseState;
  lease_expires_at: string | null;
  lease_granted_at: string | null;
  lease_renewed_at: string | null;
  token_expires_at: string | null;
}

/** Each grant the agent may use that exists now (its list, or every grant), with both clocks. */
export function agentAccess(services: GrantServices, agent: AgentTerms, grants: readonly GrantListing[], now: Date): AgentAccess[] {
  const ids = agent.grants ? [...agent.grants] : grants.map((g) => g.id);
  return ids.map((grant) => {
    const record = services.store.get<LeaseRecord>(leaseRecordId(agent.id, grant));
    const status = leaseStatus(agent, grant, record, now);
    return {
      grant,
      lease: status.state,
      lease_expires_at: status.expires_at,
      lease_granted_at: record?.granted_at ?? null,
      lease_renewed_at: record?.renewed_at ?? null,
      token_expires_at: grants.find((g) => g.id === grant)?.token_expires_at ?? null,
    };
  });
}

/** The agent and grant of a lease, checked: both exist, the agent may use the grant and has a lease clock. */
function leasedAgent(services: GrantServices, agentId: string, grantId: string, revoking: boolean): AgentTerms {
  const agent = agentTerms(services.config, services.store).find((a) => a.id === agentId);
  if (!agent) throw new KeywayError('not_found', `no agent "${agentId}" (see keyway agents list)`);
  const known = listGrants(services).some((g) => g.id === grantId);
  const recorded = services.store.get<LeaseRecord>(leaseRecordId(agentId, grantId)) !== undefined;
  // A lease on a grant removed since may still be revoked; a new lease needs the grant.
  if (!known && !(revoking && recorded)) throw new KeywayError('not_found', `no grant "${grantId}" (see keyway grants list)`);
  if (agent.grants && !agent.grants.includes(grantId)) {
    throw new KeywayError('conflict', `agent "${agentId}" may not use grant "${grantId}" (its grants: ${agent.grants.join(', ') || 'none'})`);
  }
  if (!leaseRequired(agent)) {
    throw new KeywayError(
      'conflict',
      `agent "${agentId}" has no lease_ttl, so its access to grants is not leased` +
        (agent.source === 'config'
          ? `; set agents.${agentId}.lease_ttl in the config`
          : `; give it one with keyway agents set ${agentId} --lease-ttl D (PATCH /api/agents/${agentId} {"lease_ttl": …}), its key kept`),
    );
  }
  return agent;
}

export interface LeaseGranted {
  lease: LeaseRecord;
  /** What was granted, as a duration. */
  ttl: string;
  requested_ttl: string;
  /** The ttl asked for was more than max_lease_ttl and was cut down to it. */
  capped: boolean;
  max_lease_ttl: string | null;
  /** A live lease was extended rather than a new one begun. */
  renewed: boolean;
}

/** Grants or renews: the lease then ends `ttl` from now (default: the agent's lease_ttl), never past max_lease_ttl. */
export async function grantLease(
  services: GrantServices,
  agentId: string,
  grantId: string,
  ttlText: string | undefined,
  caller: Caller,
): Promise<LeaseGranted> {
  const asked = durationInput(ttlText, 'ttl', caller);
  const agent = leasedAgent(services, agentId, grantId, false);
  const ttl = asked ?? (agent.leaseTtlMs as number);
  const result = await services.store.update((draft) => {
    const renewal = renewLease(agent, grantId, draft.get<LeaseRecord>(leaseRecordId(agent.id, grantId)), ttl, new Date());
    draft.set(leaseRecordId(agent.id, grantId), renewal.record);
    return renewal;
  });
  return {
    lease: result.record,
    ttl: formatDuration(result.grantedMs),
    requested_ttl: ttlText ?? formatDuration(ttl),
    capped: result.capped,
    max_lease_ttl: agent.maxLeaseTtlMs === undefined ? null : formatDuration(agent.maxLeaseTtlMs),
    renewed: result.renewed,
  };
}

/** Ends the lease at once; it does not restart by itself (only grantLease gives a new one). */
export async function endLease(services: GrantServices, agentId: string, grantId: string): Promise<LeaseRecord> {
  const agent = leasedAgent(services, agentId, grantId, true);
  return services.store.update((draft) => {
    const ended = revokeLease(agent, grantId, draft.get<LeaseRecord>(leaseRecordId(agent.id, grantId)), new Date());
    draft.set(leaseRecordId(agent.id, grantId), ended);
    return ended;
  });
}
