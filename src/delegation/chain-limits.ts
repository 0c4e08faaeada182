import { type LimitScope, limitScopes } from '../policy/rate-limits.ts';

// Issue 89: a delegated agent's request counts against its own limits and every ancestor's (config
// `limits:`, `grant_limits:`, a store agent's `--rate`/`--quota`), each as configured for that
// ancestor as it stands at the request. The scopes are the ancestor's own (same bucket, same quota
// record): a child spends its parent's rate and quota exactly as the parent's own requests do, so
// two children of one parent share the parent's last unit and one of them gets it. A grant's own
// limits are one scope, counted once however long the chain.

/** What is read of an agent here: a store agent's own limits (credentials/agents.ts's Agent has it). */
interface LimitedAgent {
  readonly storedLimits?: Parameters<typeof limitScopes>[3];
}

/** The child's scopes, then each ancestor's (nearest first), each scope once by its key. */
export function chainLimitScopes(
  config: Parameters<typeof limitScopes>[0],
  agents: { get(id: string): LimitedAgent | undefined },
  agentId: string,
  parents: readonly string[],
  grantId: string,
): LimitScope[] {
  const out: LimitScope[] = [];
  const seen = new Set<string>();
  const chain = [agentId, ...[...parents].reverse()];
  for (const id of chain) {
    const stored = Object.hasOwn(config.agents, id) ? undefined : agents.get(id)?.storedLimits;
    for (const scope of limitScopes(config, id, grantId, stored)) {
      if (seen.has(scope.key)) continue;
      seen.add(scope.key);
      out.push(id === agentId || scope.kind === 'grant' ? scope : { ...scope, name: `${scope.name} (a parent of this agent)` });
    }
  }
  return out;
}
