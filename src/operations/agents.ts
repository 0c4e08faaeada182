import { dropCaptured } from '../capture/store/records.ts';
import { anomalyRecordId } from '../anomaly/core/record.ts';
// Agents: add, list, remove, rotate a key. One implementation for `keyway agents …` and the admin
// API (src/admin/api/agents.ts). A key is returned once, by add and rotate-key; keyway keeps only
// its hash. Leases are in leases.ts.

import { randomBytes } from 'node:crypto';
import { formatDuration, GRANT_ID } from '../config/index.ts';
import type { LimitsInput } from '../config/limits.ts';
import { AGENT_PREFIX, agentRecordId, type StoredAgent } from '../credentials/agent-record.ts';
import { descendantsOf } from '../delegation/chain.ts';
import { mintTimesId } from '../delegation/mint-limit.ts';
import type { StoreDraft } from '../credentials/store/draft.ts';
import { agentTerms, hashAgentKey } from '../credentials/agents.ts';
import { listGrants } from '../credentials/grant-listing.ts';
import { agentLeasePrefix } from '../credentials/lease-record.ts';
import { KeywayError } from '../errors/index.ts';
import type { GrantServices } from './grants.ts';
import { durationInput, fieldName, usage, type Caller } from './fields.ts';
import { agentAccess, type AgentAccess } from './leases.ts';
import { agentLimits, type AgentLimitUse, checkLimits } from './agent-limits.ts';

export interface AgentListing {
  id: string;
  source: 'config' | 'store';
  /** The grants it may use; `['*']` for every grant. */
  grants: string[];
  mode: string;
  lease_ttl: string | null;
  max_lease_ttl: string | null;
  created_at: string | null;
  /** Each grant it may use, with both clocks: its lease and the token's expiry. */
  access: AgentAccess[];
  /** Its limits (config `limits:`, `grant_limits:`), with today's quota use. */
  limits: AgentLimitUse[];
  /** How many of its rules (config `rules:`) name each grant: a grant named here is not always allowed. */
  rules: Record<string, number>;
  /** A child agent's parent (keyway agents delegate), else null. */
  parent: string | null;
  /** A child agent's expiry, else null. */
  expires_at: string | null;
  /** A child agent's chain as the store links it, root first, the agent last (as audit lines carry it); null for a root agent. */
  chain: string[] | null;
}

export function listAgents(services: GrantServices, now = new Date()): AgentListing[] {
  const grants = listGrants(services);
  const terms = agentTerms(services.config, services.store);
  const parents = new Map(terms.map((a) => [a.id, a.parent]));
  return terms.map((agent) => ({
    id: agent.id,
    source: agent.source,
    grants: agent.grants ? [...agent.grants] : ['*'],
    mode: agent.mode,
    lease_ttl: agent.leaseTtlMs === undefined ? null : formatDuration(agent.leaseTtlMs),
    max_lease_ttl: agent.maxLeaseTtlMs === undefined ? null : formatDuration(agent.maxLeaseTtlMs),
    created_at: agent.createdAt ?? null,
    access: agentAccess(services, agent, grants, now),
    limits: agentLimits(services.config, services.store, agent.id, now),
    rules: rulesPerGrant(agent.source === 'config' ? (services.config.agents[agent.id]?.rules ?? []) : []),
    parent: agent.parent ?? null,
    expires_at: agent.expiresAt ?? null,
    chain: chainFromParents(agent.id, parents),
  }));
}

/** Root first, `id` last, by the parent each record names; null for a root agent (a loop, as hand edits could make, stops the walk). */
function chainFromParents(id: string, parents: ReadonlyMap<string, string | undefined>): string[] | null {
  const chain = [id];
  for (let at = parents.get(id); at !== undefined && !chain.includes(at); at = parents.get(at)) chain.unshift(at);
  return chain.length > 1 ? chain : null;
}

function rulesPerGrant(rules: ReadonlyArray<{ grant: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const rule of rules) counts[rule.grant] = (counts[rule.grant] ?? 0) + 1;
  return counts;
}

export interface NewAgent {
  id: string;
  grants?: readonly string[] | undefined;
  /** Durations as written: `1h`. */
  leaseTtl?: string | undefined;
  maxLeaseTtl?: string | undefined;
  /** The config's `limits:` form: `{rate: "60/min", burst: 20, quota: {requests: "10000/day", bytes: "2GiB/day"}}`. */
  limits?: LimitsInput | undefined;
}

export interface AgentKey {
  id: string;
  /** Shown once: keyway keeps only its hash. */
  key: string;
  grants: string[] | null;
  /** With no agent before this one, anonymous access has just ended. */
  firstAgent: boolean;
}

export async function addAgent(services: GrantServices, input: NewAgent, caller: Caller): Promise<AgentKey> {
  const { id } = input;
  if (!GRANT_ID.test(id)) throw usage(`agent id "${id}": expected a-z, 0-9 and -, up to 63 characters`);
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config`);
  const leaseTtl = durationInput(input.leaseTtl, 'lease_ttl', caller);
  const maxLeaseTtl = durationInput(input.maxLeaseTtl, 'max_lease_ttl', caller);
  if (leaseTtl !== undefined && maxLeaseTtl !== undefined && leaseTtl > maxLeaseTtl) {
    throw usage(
      `${fieldName('lease_ttl', caller)} ${formatDuration(leaseTtl)} is longer than ${fieldName('max_lease_ttl', caller)} ${formatDuration(maxLeaseTtl)}`,
    );
  }
  const grants = input.grants === undefined ? undefined : [...input.grants];
  if (grants !== undefined) checkGrantsExist(services, grants, caller);
  const limits = input.limits === undefined ? undefined : await checkLimits(input.limits, caller);
  const key = newAgentKey();
  const record: StoredAgent = {
    id,
    key_sha256: hashAgentKey(key).toString('hex'),
    grants,
    lease_ttl_ms: leaseTtl,
    max_lease_ttl_ms: maxLeaseTtl,
    ...(limits !== undefined ? { limits } : {}),
    created_at: new Date().toISOString(),
  };
  // Counted before the write: with no agent at all, keyway serves anonymous loopback clients.
  const firstAgent = agentTerms(services.config, services.store).length === 0;
  await services.store.update((draft) => {
    if (draft.get(agentRecordId(id))) throw new KeywayError('conflict', `agent "${id}" exists; remove it first`);
    // Leases left by an earlier agent of the same id must not carry over.
    for (const [leaseId] of draft.entries(agentLeasePrefix(id))) draft.delete(leaseId);
    draft.set(agentRecordId(id), record);
  });
  return { id, key, grants: record.grants ?? null, firstAgent };
}

function newAgentKey(): string {
  return randomBytes(32).toString('base64url');
}

/** Refuses grant ids that exist nowhere: an agent bound to a typo would be refused everything, silently. */
export function checkGrantsExist(services: GrantServices, wanted: readonly string[], caller: Caller): void {
  const known = listGrants(services).map((g) => g.id);
  const unknown = wanted.filter((g) => !known.includes(g));
  if (unknown.length === 0) return;
  const plural = unknown.length > 1 ? 's' : '';
  throw usage(
    `${fieldName('grants', caller)}: no grant${plural} ${unknown.map((g) => `"${g}"`).join(', ')} (known grants: ${known.join(', ') || 'none; add one with keyway grants add'})`,
  );
}

/** A new key for a store agent; the old key's hash is replaced, so the old key is refused from now on. */
export async function rotateAgentKey(services: GrantServices, id: string): Promise<AgentKey> {
  if (services.config.agents[id]) {
    throw new KeywayError('conflict', `agent "${id}" is defined in the config; its key comes from agents.${id}.key there`);
  }
  const key = newAgentKey();
  const grants = await services.store.update((draft) => {
    const existing = draft.get<StoredAgent>(agentRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no agent "${id}" (see keyway agents list)`);
    draft.set(agentRecordId(id), { ...existing, key_sha256: hashAgentKey(key).toString('hex') } satisfies StoredAgent);
    // Its children were minted under the old key (src/delegation/): they end with it, from the store too.
    dropAgents(
      draft,
      descendantsOf(
        draft.entries<StoredAgent>(AGENT_PREFIX).map(([, r]) => r),
        id,
      ),
    );
    return existing.grants ?? null;
  });
  return { id, key, grants, firstAgent: false };
}

/** Removes a store agent, its leases and the tokens captured at its logins. An agent from the config is removed there. */
/** `descendants`: the agents delegated below it, removed with it (nearest first). */
export async function removeAgent(services: GrantServices, id: string): Promise<{ removed: string; descendants: string[] }> {
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config; remove it there`);
  const removed = await services.store.update((draft) => {
    // Its children go with it (src/delegation/): a child left behind would come back to an agent added later under this id.
    const children = descendantsOf(
      draft.entries<StoredAgent>(AGENT_PREFIX).map(([, r]) => r),
      id,
    );
    if (!draft.get(agentRecordId(id))) return undefined;
    dropAgents(draft, [id, ...children]);
    return children;
  });
  if (removed === undefined) throw new KeywayError('not_found', `no agent "${id}"`);
  return { removed: id, descendants: removed };
}

/** Removes store agents, with their leases and the tokens captured at their logins, in one update. */
export function dropAgents(draft: StoreDraft, ids: readonly string[]): void {
  if (ids.length === 0) return;
  for (const gone of ids) {
    draft.delete(agentRecordId(gone));
    // Its mint times go too: a later agent of its id starts with a fresh count.
    draft.delete(mintTimesId(gone));
    // And its anomaly history: a later agent of its id must not inherit what this one was taught.
    draft.delete(anomalyRecordId(gone));
    for (const [leaseId] of draft.entries(agentLeasePrefix(gone))) draft.delete(leaseId);
  }
  const goneSet = new Set(ids);
  dropCaptured(draft, (record) => goneSet.has(record.agent));
}
