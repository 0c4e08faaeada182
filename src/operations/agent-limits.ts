// An agent's limits as `keyway agents list|show` and GET /api/agents show them: what the config
// sets on the agent and on the agent for each grant, with the day's quota use from the store.
// Rates are kept in each process's memory (per replica): their configuration is shown, not a count.

import type { LimitsInput } from '../config/limits.ts';
import type { Limits } from '../config/limits-values.ts';
import { storedLimits } from '../credentials/agents.ts';
import { agentRecordId, type StoredAgent } from '../credentials/agent-record.ts';
import { fieldName, usage, type Caller } from './fields.ts';
import type { Config } from '../config/index.ts';
import { type QuotaRecord, quotaRecordId } from '../quotas/record.ts';

export interface AgentLimitUse {
  /** `agent`: all the agent's requests; `agent_grant`: its requests through `grant`. */
  scope: 'agent' | 'agent_grant';
  grant: string | null;
  /** As written (`60/min`), or null. */
  rate: string | null;
  burst: number | null;
  /** Requests per UTC day, or null. */
  quota_requests: number | null;
  /** Requests of today's quota taken, by every process on the store (blocks reserved count as taken). */
  quota_used: number | null;
  /** Body bytes per UTC day (request bodies sent, response bodies received), or null. */
  quota_bytes: number | null;
  /** Body bytes counted today, as the store has them (each process adds its count every second). */
  bytes_used: number | null;
  /** When the day's count starts again (the next UTC midnight), for a quota. */
  quota_resets_at: string | null;
}

export function agentLimits(config: Pick<Config, 'agents'>, store: { get<T>(id: string): T | undefined }, agentId: string, now: Date): AgentLimitUse[] {
  const stored = Object.hasOwn(config.agents, agentId) ? undefined : store.get<StoredAgent>(agentRecordId(agentId));
  const fromStore = stored ? storedLimits(stored) : undefined;
  const agent = Object.hasOwn(config.agents, agentId) ? config.agents[agentId] : fromStore ? { limits: fromStore, grant_limits: undefined } : undefined;
  if (agent === undefined) return [];
  const out: AgentLimitUse[] = [];
  const day = now.toISOString().slice(0, 10);
  const resets = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
  const row = (scope: AgentLimitUse['scope'], grant: string | undefined, limits: Limits): AgentLimitUse => {
    const quota = limits.quota?.requests;
    const bytes = limits.quota?.bytes;
    const stored = store.get<QuotaRecord>(quotaRecordId(scope, agentId, grant));
    const record = stored?.day === day ? stored : undefined;
    return {
      scope,
      grant: grant ?? null,
      rate: limits.rate?.text ?? null,
      burst: limits.rate?.burst ?? null,
      quota_requests: quota ?? null,
      quota_used: quota === undefined ? null : Math.min(quota, record?.reserved ?? 0),
      quota_bytes: bytes ?? null,
      bytes_used: bytes === undefined ? null : (record?.bytes ?? 0),
      quota_resets_at: quota === undefined && bytes === undefined ? null : resets,
    };
  };
  if (agent.limits) out.push(row('agent', undefined, agent.limits));
  for (const [grant, limits] of Object.entries(agent.grant_limits ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) out.push(row('agent_grant', grant, limits));
  return out;
}

/**
 * Limits as given, once they parse as the config's `limits:` do; a usage error naming the key otherwise.
 * The schema is loaded here, at a write, not with the admin API: zod is no part of a keyway's start.
 */
export async function checkLimits(limits: unknown, caller: Caller): Promise<LimitsInput> {
  const { parseLimits } = await import('../config/limits.ts');
  const parsed = parseLimits(limits);
  if (typeof parsed === 'string') throw usage(`${caller === 'cli' ? 'limits' : fieldName('limits', caller)}: ${parsed}`);
  return limits as LimitsInput;
}
