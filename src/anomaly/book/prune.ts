import { agentRecordId, type StoredAgent } from '../../credentials/agent-record.ts';
import { ANOMALY_PREFIX } from '../core/record.ts';

// Which agents' histories (`anomaly:<agent>`) can go from the store: those of agents that can never
// be served again, so the store holds at most one history per live agent, however many delegated
// children come and go (`keyway run --delegate` mints one a run). Removing an agent drops its
// history with it (operations/agents.ts, dropAgents); this finds the rest:
//   - a delegated child past its expiry (its record stays until its parent next mints), or with an
//     expiry that does not read (the agent table reads that as expired too);
//   - an id that is neither a config agent nor in the store (removed before histories went with it).
// A history must not outlive its agent: a child minted again under a revoked child's id would
// otherwise inherit what the old one was taught, and its first use would look usual.

interface PruneDraft {
  get<T>(id: string): T | undefined;
  entries<T>(prefix: string): Array<[string, T]>;
}

/** The agents whose histories are stale at `now`, given the config's agents. */
export function staleHistories(draft: PruneDraft, configAgents: ReadonlySet<string>, now: number): string[] {
  return draft
    .entries(ANOMALY_PREFIX)
    .map(([id]) => id.slice(ANOMALY_PREFIX.length))
    .filter((agent) => gone(draft, agent, configAgents, now));
}

/**
 * Whether the agent can never be served again: then nothing is written to its history either (a
 * count flushed, or a learning in flight, just after it was revoked would make the history anew).
 */
export function gone(draft: Pick<PruneDraft, 'get'>, agent: string, configAgents: ReadonlySet<string>, now: number): boolean {
  if (configAgents.has(agent)) return false;
  const stored = draft.get<StoredAgent>(agentRecordId(agent));
  if (stored === undefined) return true;
  return stored.parent !== undefined && !(Date.parse(stored.expires_at ?? '') > now);
}
