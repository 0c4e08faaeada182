import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config, RuleConfig } from '../config/index.ts';
import { isBlankSecret, readSecretRef } from '../config/index.ts';
import { type Limits, readStoredLimits } from '../config/limits-values.ts';
import { KeywayError } from '../errors/index.ts';
import { compileRules, type AgentPolicy, type PolicyMode } from '../policy/rules.ts';
import { chainOf, type ChildLink, linkChildren } from '../delegation/chain.ts';
import { DEFAULT_DEPTH, MAX_DEPTH } from '../delegation/terms.ts';
import { identityTie } from '../delegation/identity-tie.ts';
import { AGENT_PREFIX, type StoredAgent } from './agent-record.ts';
import type { RecordSource } from './store/credential-store.ts';

export interface Agent {
  readonly id: string;
  /** undefined: every grant. */
  readonly grants: ReadonlySet<string> | undefined;
  readonly source: 'config' | 'store' | 'anonymous';
  readonly keySha256: Buffer | undefined;
  /** The agent's compiled rules; undefined or empty: every grant it may use is open. */
  readonly policy?: AgentPolicy | undefined;
  readonly mode?: PolicyMode | undefined;
  /** undefined: no lease clock (policy/leases.ts). */
  readonly leaseTtlMs?: number | undefined;
  readonly maxLeaseTtlMs?: number | undefined;
  /** A store agent's limits (`keyway agents add --rate …`); a config agent's are read from the config. */
  readonly storedLimits?: Limits | undefined;
  /** Set on the agent of a connection that signed in with an identity token: who it proved to be (the audit line's `identity`). */
  readonly identity?: { readonly iss: string; readonly sub: string } | undefined;
  /** That token's exp (epoch ms). */
  readonly identityExpiresAt?: number | undefined;
  /** That token's verified claims, mapped again when the identities or agents change (proxy/agent-standing.ts). */
  readonly identityClaims?: Readonly<Record<string, unknown>> | undefined;
  /** That token itself, verified: a grant that acts on the agent's behalf exchanges it (types/token_exchange/). Never logged. */
  readonly identityToken?: string | undefined;
  /** A child agent (src/delegation/): its ancestors as they stand, root first, nearest last. */
  readonly parents?: readonly string[] | undefined;
  /** A child's expiry (epoch ms), or an ancestor's if sooner: past it, its key is refused. */
  readonly expiresAt?: number | undefined;
  /** Generations it may mint below it (delegation/terms.ts). */
  readonly delegationDepth?: number | undefined;
  /** A config agent without a key: the hash of the identity mapping that reaches it, which ties its children to it (delegation/identity-tie.ts). */
  readonly identityTieSha256?: Buffer | undefined;
}

/** What the config or the store says about an agent, without its key: enough for listings and leases. */
export interface AgentTerms {
  readonly id: string;
  readonly source: 'config' | 'store';
  readonly grants: readonly string[] | undefined;
  readonly mode: PolicyMode;
  readonly leaseTtlMs: number | undefined;
  readonly maxLeaseTtlMs: number | undefined;
  readonly createdAt: string | undefined;
  /** A child agent's parent, as its record names it. */
  readonly parent?: string | undefined;
  readonly expiresAt?: string | undefined;
}

/** Every configured agent (config first; a store agent with a config agent's id is ignored), sorted by id. */
export function agentTerms(config: Config, store: RecordSource): AgentTerms[] {
  const out = new Map<string, AgentTerms>();
  for (const [id, a] of Object.entries(config.agents)) {
    out.set(id, { id, source: 'config', grants: a.grants, mode: a.mode, leaseTtlMs: a.lease_ttl, maxLeaseTtlMs: a.max_lease_ttl, createdAt: undefined });
  }
  for (const [, stored] of store.entries<StoredAgent>(AGENT_PREFIX)) {
    if (out.has(stored.id)) continue;
    out.set(stored.id, {
      id: stored.id,
      source: 'store',
      grants: stored.grants,
      mode: 'enforce',
      leaseTtlMs: stored.lease_ttl_ms,
      maxLeaseTtlMs: stored.max_lease_ttl_ms,
      createdAt: stored.created_at,
      parent: stored.parent,
      expiresAt: stored.expires_at,
    });
  }
  return [...out.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** The audit line's `chain` for an agent: root first, the agent last; undefined for a root agent (delegation/chain.ts). */
export const agentChain = (agent: Pick<Agent, 'id' | 'parents'>): string[] | undefined => chainOf(agent);

/** With no agents configured, one anonymous agent serves loopback clients and may use every grant. */
export const ANONYMOUS_AGENT: Agent = Object.freeze({
  id: 'local',
  grants: undefined,
  source: 'anonymous',
  keySha256: undefined,
});

export function hashAgentKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class AgentTable {
  readonly #agents: Map<string, Agent>;

  constructor(agents: Map<string, Agent>) {
    this.#agents = agents;
  }

  get anonymous(): boolean {
    return this.#agents.size === 0;
  }

  get(id: string): Agent | undefined {
    return this.#agents.get(id);
  }

  list(): Agent[] {
    return [...this.#agents.values()];
  }

  /**
   * Constant-time on the key; an unknown id costs the same as a wrong key. An empty or
   * whitespace-only key never authenticates, whatever hash a record holds (defence in depth: keys
   * from env:/file: references are refused blank at load, but a store record could hold any hash).
   * An agent with no key (one only an identity token reaches) never authenticates by key: it is
   * compared against the dummy hash for timing's sake only, and refused whatever matched.
   */
  authenticate(id: string, key: string): Agent | undefined {
    const agent = this.#agents.get(id);
    const offered = hashAgentKey(key);
    const expected = agent?.keySha256 ?? UNKNOWN_AGENT_HASH;
    const same = timingSafeEqual(offered, expected);
    return same && agent?.keySha256 !== undefined && !isBlankSecret(key) ? agent : undefined;
  }
}

const UNKNOWN_AGENT_HASH = hashAgentKey('\u0000no-such-agent');

/**
 * The agents the config names, with their keys read and rules compiled: once per config, since
 * the config does not change while it runs (the schema has already checked every value). Throws
 * config_invalid for a key that cannot be read.
 */
export function compileConfigAgents(config: Config, env: NodeJS.ProcessEnv): ReadonlyMap<string, Agent> {
  const agents = new Map<string, Agent>();
  for (const [id, a] of Object.entries(config.agents)) {
    let key: string | undefined;
    try {
      // No key: the agent signs in with an identity token only (identities:).
      key = a.key === undefined ? undefined : readSecretRef(a.key, env, config.home);
    } catch (err) {
      throw new KeywayError('config_invalid', `agents.${id}.key: ${(err as Error).message}`);
    }
    agents.set(id, {
      id,
      grants: a.grants ? new Set(a.grants) : undefined,
      source: 'config',
      keySha256: key === undefined ? undefined : hashAgentKey(key),
      ...(key === undefined ? { identityTieSha256: identityTie(config.identities, id) } : {}),
      policy: compileRules(id, a.rules, a.mode),
      mode: a.mode,
      leaseTtlMs: a.lease_ttl,
      maxLeaseTtlMs: a.max_lease_ttl,
      delegationDepth: a.delegation?.depth,
    });
  }
  return agents;
}

/**
 * A store agent's limits, parsed. Written only through addAgent/setAgentLimits, which check them:
 * a record edited by hand into nonsense limits nothing (and the listing shows none).
 */
export function storedLimits(stored: StoredAgent): Limits | undefined {
  // Not the config's schema (zod): the running keyway reads these at every agent table build.
  return stored.limits === undefined ? undefined : readStoredLimits(stored.limits);
}

/**
 * A store agent's rules compiled: none but a child's (`agents delegate --rules`), stored as the
 * config's schema read them at minting (delegation/child-rules.ts), so no schema is loaded here.
 * undefined: they do not compile.
 */
function storedPolicy(stored: StoredAgent): AgentPolicy | undefined {
  try {
    return compileRules(stored.id, (stored.rules ?? []) as RuleConfig[], 'enforce');
  } catch {
    return undefined;
  }
}

/**
 * The generations a store agent may mint below it. A record edited by hand may say anything: what
 * is not a whole number from 0 is 0, and a root's is at most MAX_DEPTH (a child's is cut to its
 * parent's at each table build: delegation/chain.ts).
 */
function storedDepth(stored: StoredAgent): number {
  const depth = stored.delegation_depth ?? (stored.parent === undefined ? DEFAULT_DEPTH : 0);
  return Number.isInteger(depth) && depth >= 0 ? Math.min(depth, MAX_DEPTH) : 0;
}

/**
 * The agent table: the config's agents, then the store's (a store agent with a config agent's id
 * is ignored). Rebuilt on every store change; pass the config agents compiled once.
 */
export function buildAgents(
  config: Config,
  store: RecordSource,
  env: NodeJS.ProcessEnv,
  configAgents: ReadonlyMap<string, Agent> = compileConfigAgents(config, env),
): AgentTable {
  const agents = new Map<string, Agent>(configAgents);
  const links = new Map<string, ChildLink>();
  for (const [, stored] of store.entries<StoredAgent>(AGENT_PREFIX)) {
    if (agents.has(stored.id)) continue;
    // A child's record names its parent; one whose link is half written is a child of nobody, and no agent.
    if (stored.parent !== undefined || stored.parent_key_sha256 !== undefined) {
      links.set(stored.id, { parent: stored.parent ?? '', parentKeySha256: stored.parent_key_sha256 ?? '' });
    }
    const expiresAt = stored.expires_at === undefined ? undefined : Date.parse(stored.expires_at);
    const policy = storedPolicy(stored);
    // Rules that no longer compile (a record edited by hand): no agent, rather than one without them.
    if (policy === undefined) continue;
    agents.set(stored.id, {
      id: stored.id,
      grants: stored.grants ? new Set(stored.grants) : undefined,
      source: 'store',
      keySha256: Buffer.from(stored.key_sha256, 'hex'),
      policy,
      mode: 'enforce',
      leaseTtlMs: stored.lease_ttl_ms,
      maxLeaseTtlMs: stored.max_lease_ttl_ms,
      storedLimits: storedLimits(stored),
      // An unreadable expiry is no expiry to trust: expired now.
      ...(expiresAt !== undefined ? { expiresAt: Number.isNaN(expiresAt) ? 0 : expiresAt } : {}),
      delegationDepth: storedDepth(stored),
    });
  }
  // Children are cut to their parents as they stand now; a child without its parent is no agent.
  return new AgentTable(links.size === 0 ? agents : linkChildren(agents, links));
}
