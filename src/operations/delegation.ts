// `keyway agents delegate PARENT --name CHILD …`: a child agent minted for a parent, never wider
// (src/delegation/terms.ts says what it admits). The child is a store agent whose record names its
// parent by id and key hash; the key is returned once, as by addAgent.

import { randomBytes } from 'node:crypto';
import { GRANT_ID, parseDuration } from '../config/index.ts';
import { agentRecordId, type StoredAgent } from '../credentials/agent-record.ts';
import { type Agent, buildAgents, compileConfigAgents, hashAgentKey } from '../credentials/agents.ts';
import { agentLeasePrefix } from '../credentials/lease-record.ts';
import { checkChildRules } from '../delegation/child-rules.ts';
import { checkChildBudget, type StoredBudget } from '../delegation/child-budget.ts';
import { checkMint, DEFAULT_DEPTH, MAX_DEPTH } from '../delegation/terms.ts';
import { KeywayError } from '../errors/index.ts';
import { checkGrantsExist } from './agents.ts';
import { fieldName, usage, type Caller } from './fields.ts';
import type { GrantServices } from './grants.ts';

export interface NewChild {
  /** The child's id. */
  name: string;
  grants?: readonly string[] | undefined;
  /** A duration as written: `1h`. */
  ttl?: string | undefined;
  /** Generations the child may mint below it (0 unless given). */
  depth?: number | undefined;
  /** Its own rules, in the config's rule form (a list, or `{rules: [...]}`): they can only narrow it. */
  rules?: unknown;
  /** Its own spend budget: `usd=2/day`, or the config's budget form without selectors (delegation/child-budget.ts). */
  budget?: unknown;
}

export interface ChildKey {
  id: string;
  parent: string;
  /** Shown once: keyway keeps only its hash. */
  key: string;
  grants: string[] | null;
  /** [root, …, parent, child]. */
  chain: string[];
  expires_at: string;
  depth: number;
  /** Its own budget as stored, or null. */
  budget: StoredBudget | null;
}

/**
 * Mints CHILD for PARENT as the parent stands now (its grants cut to its own ancestors'), in one
 * store update: a parent removed or rotated meanwhile is read as it is then. Throws
 * delegation_refused for anything wider than the parent, usage for malformed input.
 */
export async function delegateAgent(
  services: GrantServices,
  parentId: string,
  input: NewChild,
  caller: Caller,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildKey> {
  const id = input.name;
  if (!GRANT_ID.test(id)) throw usage(`${fieldName('name', caller)} "${id}": expected a-z, 0-9 and -, up to 63 characters`);
  if (services.config.agents[id]) throw new KeywayError('conflict', `agent "${id}" is defined in the config`);
  const ttlMs = input.ttl === undefined ? undefined : parseDuration(input.ttl);
  if (input.ttl !== undefined && (ttlMs === undefined || ttlMs <= 0)) throw usage(`${fieldName('ttl', caller)}: expected a duration such as 15m or 1h`);
  if (input.depth !== undefined && (!Number.isInteger(input.depth) || input.depth < 0 || input.depth > MAX_DEPTH)) {
    throw usage(`${fieldName('depth', caller)}: expected a whole number from 0 to ${MAX_DEPTH}`);
  }
  if (input.grants !== undefined) checkGrantsExist(services, input.grants, caller);
  const budget = input.budget === undefined ? undefined : checkChildBudget(input.budget, fieldName('budget', caller));
  const key = randomBytes(32).toString('base64url');
  return services.store.update((draft) => {
    if (draft.get(agentRecordId(id))) throw new KeywayError('conflict', `agent "${id}" exists; remove it first`);
    // The parent as the proxy would see it now: a child parent already cut to its own parent.
    const parent = buildAgents(services.config, draft, env, configAgents(services.config, env, parentId)).get(parentId);
    if (parent === undefined || parent.source === 'anonymous') throw new KeywayError('not_found', `no agent "${parentId}" (see keyway agents list)`);
    const now = Date.now();
    const terms = checkMint(
      {
        id: parent.id,
        grants: parent.grants,
        expiresAt: parent.expiresAt,
        leaseTtlMs: parent.leaseTtlMs,
        maxLeaseTtlMs: parent.maxLeaseTtlMs,
        depth: parent.delegationDepth ?? DEFAULT_DEPTH,
        hasKey: parent.keySha256 !== undefined,
      },
      { grants: input.grants, ttlMs, depth: input.depth },
      now,
    );
    const rules = input.rules === undefined ? undefined : checkChildRules(input.rules, terms.grants);
    const record: StoredAgent = {
      id,
      key_sha256: hashAgentKey(key).toString('hex'),
      grants: terms.grants === undefined ? undefined : [...terms.grants],
      created_at: new Date(now).toISOString(),
      parent: parent.id,
      parent_key_sha256: parent.keySha256!.toString('hex'),
      expires_at: new Date(terms.expiresAt).toISOString(),
      delegation_depth: terms.depth,
      ...(rules !== undefined ? { rules } : {}),
      ...(budget !== undefined ? { budget } : {}),
    };
    // Leases left by an earlier agent of the same id must not carry over.
    for (const [leaseId] of draft.entries(agentLeasePrefix(id))) draft.delete(leaseId);
    draft.set(agentRecordId(id), record);
    return {
      id,
      parent: parent.id,
      key,
      grants: record.grants ?? null,
      chain: [...(parent.parents ?? []), parent.id, id],
      expires_at: record.expires_at!,
      depth: terms.depth,
      budget: budget ?? null,
    };
  });
}

/**
 * The config's agents with their keys read, each on its own: one whose key this process cannot read
 * (a shell without its env: variable) cannot be an ancestor here, but does not stop minting under
 * another. The parent's own unreadable key is the error, naming it.
 */
function configAgents(config: GrantServices['config'], env: NodeJS.ProcessEnv, parentId: string): Map<string, Agent> {
  const out = new Map<string, Agent>();
  for (const [id, agent] of Object.entries(config.agents)) {
    try {
      for (const [key, compiled] of compileConfigAgents({ ...config, agents: { [id]: agent } }, env)) out.set(key, compiled);
    } catch (err) {
      if (id === parentId) throw err;
    }
  }
  return out;
}
