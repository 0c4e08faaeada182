import type { Limits, RateLimit } from '../config/limits.ts';

// Per-replica request rates: a token bucket per scope (an agent, a grant, an agent on one grant),
// in this process's memory. A request takes one token from every bucket that applies, or from none:
// the check and the take are one synchronous step, so 200 requests at once against `burst: 20`
// pass exactly 20, and a request one bucket refuses costs the others nothing.

/** One scope's limits, and the key its bucket is kept under. */
export interface LimitScope {
  /** Whose limit: written on the audit line of a refusal (`limit`). */
  readonly kind: 'agent' | 'grant' | 'agent_grant';
  /** `agent bot`, `grant github`, `agent bot on grant github`: for messages. */
  readonly name: string;
  readonly key: string;
  readonly limits: Limits;
  /** The agent and grant the scope is about (the quota's store record is named by them). */
  readonly agent?: string | undefined;
  readonly grant?: string | undefined;
}

export type RateVerdict = { ok: true } | { ok: false; scope: LimitScope; rate: RateLimit; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
}

// Scopes come from the config (agents and grants): a bounded set, yet a cap keeps a config with
// thousands of agents from growing the map without end.
const MAX_BUCKETS = 50_000;

/**
 * What the proxy takes rate tokens from: this process's buckets (RateLimiter), or, under
 * proxy.workers, the primary's (app/workers/shared-rates.ts), answered over IPC.
 */
export interface RateCounter {
  take(scopes: readonly LimitScope[], nowMs: number): RateVerdict | Promise<RateVerdict>;
}

/** Whether any of the scopes has a rate (the others cost the rate counter nothing). */
export function anyRate(scopes: readonly LimitScope[]): boolean {
  for (const scope of scopes) if (scope.limits.rate !== undefined) return true;
  return false;
}

export class RateLimiter implements RateCounter {
  readonly #buckets = new Map<string, Bucket>();

  /** Takes a token from each scope's bucket, or refuses naming the first scope that has none. */
  take(scopes: readonly LimitScope[], nowMs: number): RateVerdict {
    const due: Array<[Bucket, LimitScope, RateLimit]> = [];
    for (const scope of scopes) {
      const rate = scope.limits.rate;
      if (rate === undefined) continue;
      const bucket = this.#bucket(scope, rate, nowMs);
      refill(bucket, rate, nowMs);
      if (bucket.tokens < 1) return { ok: false, scope, rate, retryAfterMs: Math.ceil((1 - bucket.tokens) * (rate.perMs / rate.count)) };
      due.push([bucket, scope, rate]);
    }
    for (const [bucket] of due) bucket.tokens -= 1;
    return { ok: true };
  }

  /** Tokens left in a scope's bucket now (for listings), or undefined when it has no rate. */
  remaining(scope: LimitScope, nowMs: number): number | undefined {
    const rate = scope.limits.rate;
    if (rate === undefined) return undefined;
    const bucket = this.#buckets.get(bucketKey(scope, rate));
    if (bucket === undefined) return rate.burst;
    const copy = { ...bucket };
    refill(copy, rate, nowMs);
    return Math.floor(copy.tokens);
  }

  #bucket(scope: LimitScope, rate: RateLimit, nowMs: number): Bucket {
    // The rate is part of the key: a reload that changes it starts a full bucket under the new rate.
    const key = bucketKey(scope, rate);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = { tokens: rate.burst, at: nowMs };
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }
}

/** A bucket's key: the scope's and its rate's (a reload that changes the rate starts another bucket). */
export function bucketKey(scope: LimitScope, rate: RateLimit): string {
  return `${scope.key}\0${rate.count}/${rate.perMs}\0${rate.burst}`;
}

function refill(bucket: Bucket, rate: RateLimit, nowMs: number): void {
  const elapsed = nowMs - bucket.at;
  if (elapsed > 0) bucket.tokens = Math.min(rate.burst, bucket.tokens + (elapsed * rate.count) / rate.perMs);
  bucket.at = Math.max(bucket.at, nowMs);
}

/** What the config names for this agent and grant: the agent's limits, the grant's, the agent's on the grant. */
export function limitScopes(
  config: {
    agents: Readonly<Record<string, { limits?: Limits | undefined; grant_limits?: Readonly<Record<string, Limits>> | undefined }>>;
    grants: Readonly<Record<string, { limits?: Limits | undefined }>>;
  },
  agentId: string,
  grantId: string,
  /** A store agent's own limits (keyway agents add --rate …): the config names none for it. */
  storedAgentLimits?: Limits | undefined,
): LimitScope[] {
  const scopes: LimitScope[] = [];
  const agent = Object.hasOwn(config.agents, agentId) ? config.agents[agentId] : storedAgentLimits ? { limits: storedAgentLimits } : undefined;
  const onGrant = agent?.grant_limits && Object.hasOwn(agent.grant_limits, grantId) ? agent.grant_limits[grantId] : undefined;
  if (onGrant)
    scopes.push({
      kind: 'agent_grant',
      name: `agent "${agentId}" on grant "${grantId}"`,
      key: `agent-grant\0${agentId}\0${grantId}`,
      limits: onGrant,
      agent: agentId,
      grant: grantId,
    });
  if (agent?.limits) scopes.push({ kind: 'agent', name: `agent "${agentId}"`, key: `agent\0${agentId}`, limits: agent.limits, agent: agentId });
  const grant = Object.hasOwn(config.grants, grantId) ? config.grants[grantId] : undefined;
  if (grant?.limits) scopes.push({ kind: 'grant', name: `grant "${grantId}"`, key: `grant\0${grantId}`, limits: grant.limits, grant: grantId });
  return scopes;
}

/** Seconds from `now` to the next UTC midnight, when a day's quota starts again. */
export function secondsToNextDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}
