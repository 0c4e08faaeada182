// A store agent's lease clock changed in place: lease_ttl and max_lease_ttl given, changed or taken
// away, its key kept (`keyway agents set ID --lease-ttl D`, PATCH /api/agents/{agent}). One
// implementation for both callers; a config agent's terms are the config's.
//
// What a change does to the leases it has:
// - the clock turned on or off: every lease record of the agent goes, so a clock given again starts
//   afresh (a first use starts a lease) rather than bringing back a lapsed or revoked one of before;
// - a lower max_lease_ttl: a live lease that would run past now + max_lease_ttl ends then instead,
//   as a renewal would have been capped (no single grant gives more than max_lease_ttl);
// - a new lease_ttl: live leases keep their expiry; the next lease or renewal uses it.

import { formatDuration, parseDuration } from '../config/index.ts';
import { agentRecordId, type StoredAgent } from '../credentials/agent-record.ts';
import { agentLeasePrefix, type LeaseRecord } from '../credentials/lease-record.ts';
import { KeywayError } from '../errors/index.ts';
import { isLive } from '../policy/leases.ts';
import { fieldName, usage, type Caller } from './fields.ts';
import type { GrantServices } from './grants.ts';

/** Each term: a duration as written (`1h`), null for none, undefined to leave it as it is. */
export interface LeaseTermsInput {
  leaseTtl?: string | null | undefined;
  maxLeaseTtl?: string | null | undefined;
}

export interface LeaseTerms {
  lease_ttl: string | null;
  max_lease_ttl: string | null;
}

export async function setAgentLeaseTerms(services: GrantServices, id: string, input: LeaseTermsInput, caller: Caller): Promise<LeaseTerms> {
  if (input.leaseTtl === undefined && input.maxLeaseTtl === undefined) {
    throw usage(`${fieldName('lease_ttl', caller)} or ${fieldName('max_lease_ttl', caller)}: required (a duration, or ${none(caller)})`);
  }
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config; set agents.${id}.lease_ttl there`);
  const leaseTtl = termInput(input.leaseTtl, 'lease_ttl', caller);
  const maxLeaseTtl = termInput(input.maxLeaseTtl, 'max_lease_ttl', caller);
  const now = Date.now();
  return services.store.update((draft) => {
    const existing = draft.get<StoredAgent>(agentRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no agent "${id}" (see keyway agents list)`);
    const ttl = leaseTtl === undefined ? existing.lease_ttl_ms : (leaseTtl ?? undefined);
    // A clock taken away takes its cap with it, unless the same change names one (refused below).
    const max = maxLeaseTtl === undefined ? (leaseTtl === null ? undefined : existing.max_lease_ttl_ms) : (maxLeaseTtl ?? undefined);
    if (ttl === undefined && max !== undefined) {
      throw usage(`${fieldName('max_lease_ttl', caller)} needs a lease clock: give ${fieldName('lease_ttl', caller)} too`);
    }
    if (ttl !== undefined && max !== undefined && ttl > max) {
      throw usage(`${fieldName('lease_ttl', caller)} ${formatDuration(ttl)} is longer than ${fieldName('max_lease_ttl', caller)} ${formatDuration(max)}`);
    }
    const { lease_ttl_ms: _ttl, max_lease_ttl_ms: _max, ...rest } = existing;
    draft.set(agentRecordId(id), {
      ...rest,
      ...(ttl !== undefined ? { lease_ttl_ms: ttl } : {}),
      ...(max !== undefined ? { max_lease_ttl_ms: max } : {}),
    } satisfies StoredAgent);
    const clockTurned = (existing.lease_ttl_ms === undefined) !== (ttl === undefined);
    for (const [leaseId, lease] of draft.entries<LeaseRecord>(agentLeasePrefix(id))) {
      if (clockTurned) draft.delete(leaseId);
      else if (max !== undefined && isLive(lease, new Date(now)) && Date.parse(lease.expires_at) > now + max) {
        draft.set(leaseId, { ...lease, expires_at: new Date(now + max).toISOString() } satisfies LeaseRecord);
      }
    }
    return { lease_ttl: ttl === undefined ? null : formatDuration(ttl), max_lease_ttl: max === undefined ? null : formatDuration(max) };
  });
}

/** A term as given: a positive duration, null (none), or undefined (unchanged). */
function termInput(text: string | null | undefined, name: string, caller: Caller): number | null | undefined {
  if (text === undefined || text === null) return text;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw usage(`${fieldName(name, caller)}: expected a duration such as 15m, 1h or 7d, or ${none(caller)}`);
  return ms;
}

const none = (caller: Caller) => (caller === 'cli' ? 'none' : 'null');
