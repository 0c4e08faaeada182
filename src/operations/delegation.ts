// `keyway agents delegate PARENT --name CHILD …`: a child agent minted for a parent, never wider
// (src/delegation/terms.ts says what it admits). The child is a store agent whose record names its
// parent by id and key hash; the key is returned once, as by addAgent.

import { randomBytes } from 'node:crypto';
import { GRANT_ID, parseDuration } from '../config/index.ts';
import { AGENT_PREFIX, agentRecordId, type StoredAgent } from '../credentials/agent-record.ts';
import { type Agent, buildAgents, compileConfigAgents, hashAgentKey } from '../credentials/agents.ts';
import { agentLeasePrefix } from '../credentials/lease-record.ts';
import type { StoreDraft } from '../credentials/store/draft.ts';
import { descendantsOf, parentTie } from '../delegation/chain.ts';
import { checkChildRules } from '../delegation/child-rules.ts';
import { admitMint, type MintTimes, mintTimesId } from '../delegation/mint-limit.ts';
import { checkMint, DEFAULT_DEPTH, MAX_DEPTH } from '../delegation/terms.ts';
import { KeywayError } from '../errors/index.ts';
import { checkGrantsExist, dropAgents } from './agents.ts';
import type { CredentialStore } from '../credentials/store/index.ts';
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
}

/** How a mint is asked for: `door`, by the parent itself through the proxy (mint-limit.ts applies). */
export interface MintOptions {
  readonly door?: boolean | undefined;
  /** What proved the parent when it signed in (its key's hash, or its identity tie: the door): one changed since mints nothing. */
  readonly signedInWith?: Buffer | undefined;
  /** Epoch ms the child may not outlive: the identity token the parent signed in with (the door). */
  readonly notAfter?: number | undefined;
}

/** delegation_limited: a parent past its mints per window or its live children; retryAfter in seconds. */
export class MintLimited extends KeywayError {
  readonly retryAfter: number;
  constructor(message: string, retryAfter: number) {
    super('delegation_limited', message);
    this.retryAfter = retryAfter;
  }
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
  options: MintOptions = {},
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
  const key = randomBytes(32).toString('base64url');
  return services.store.update((draft) => {
    if (draft.get(agentRecordId(id))) throw new KeywayError('conflict', `agent "${id}" exists; remove it first`);
    // The parent as the proxy would see it now: a child parent already cut to its own parent.
    const parent = buildAgents(services.config, draft, env, configAgents(services.config, env, parentId)).get(parentId);
    if (parent === undefined || parent.source === 'anonymous') throw new KeywayError('not_found', `no agent "${parentId}" (see keyway agents list)`);
    const tie = parentTie(parent);
    if (options.signedInWith !== undefined && !(tie?.equals(options.signedInWith) ?? false)) {
      throw new KeywayError('delegation_refused', `agent "${parent.id}"'s key (or identity mapping) changed since this connection signed in: sign in again`);
    }
    const now = Date.now();
    // The parent's expired children go from the store at each of its mints: they could serve nothing.
    const live = sweepExpiredChildren(draft, parent.id, now);
    if (options.door) {
      const times = draft.get<MintTimes>(mintTimesId(parent.id));
      const verdict = admitMint(parent.id, times?.at ?? [], live, now);
      if (!verdict.ok) throw new MintLimited(verdict.reason, verdict.retryAfterS);
      draft.set(mintTimesId(parent.id), { parent: parent.id, at: verdict.at } satisfies MintTimes);
    }
    const terms = checkMint(
      {
        id: parent.id,
        grants: parent.grants,
        // Minted on a connection an identity token signed in: no longer than that token.
        expiresAt: soonest(parent.expiresAt, options.notAfter),
        leaseTtlMs: parent.leaseTtlMs,
        maxLeaseTtlMs: parent.maxLeaseTtlMs,
        depth: parent.delegationDepth ?? DEFAULT_DEPTH,
        hasKey: tie !== undefined,
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
      parent_key_sha256: tie!.toString('hex'),
      expires_at: new Date(terms.expiresAt).toISOString(),
      delegation_depth: terms.depth,
      ...(rules !== undefined ? { rules } : {}),
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

/**
 * Removes from the store every descendant of these agents (config agents a reload removed, or gave
 * another key), in one update; returns their ids. The table already leaves them out (their link no
 * longer resolves), but a parent added again under its old key would find them still there:
 * revoked with the parent means gone, as `agents rm` and `rotate-key` make a store parent's.
 */
export async function dropChildrenOf(store: CredentialStore, parents: readonly string[]): Promise<string[]> {
  const has = (source: Pick<CredentialStore, 'entries'>) =>
    parents.some(
      (id) =>
        descendantsOf(
          source.entries<StoredAgent>(AGENT_PREFIX).map(([, r]) => r),
          id,
        ).length > 0,
    );
  // Read first: most removed agents had no children, and an update would rebuild every table for nothing.
  if (parents.length === 0 || !has(store)) return [];
  return store.update((draft) => {
    const records = draft.entries<StoredAgent>(AGENT_PREFIX).map(([, r]) => r);
    const gone = [...new Set(parents.flatMap((id) => descendantsOf(records, id)))];
    dropAgents(draft, gone);
    return gone;
  });
}

/**
 * Removes the parent's children (and theirs) whose expiry has passed; returns how many of its own
 * children are left alive. A record with an unreadable expiry is expired (as the agent table reads it).
 */
function sweepExpiredChildren(draft: StoreDraft, parentId: string, now: number): number {
  const records = draft.entries<StoredAgent>(AGENT_PREFIX).map(([, r]) => r);
  const expired = records.filter((r) => r.parent === parentId && !(Date.parse(r.expires_at ?? '') > now)).map((r) => r.id);
  if (expired.length > 0) dropAgents(draft, [...new Set(expired.flatMap((id) => [id, ...descendantsOf(records, id)]))]);
  return records.filter((r) => r.parent === parentId).length - expired.length;
}

/**
 * An agent revokes one of its own descendants (`DELETE https://keyway.internal/delegate/NAME`), with
 * that one's descendants, in one store update. Anything else, an agent that exists or not, is
 * refused alike `not_found`: the door tells no agent what other agents there are.
 */
export async function revokeDescendant(services: GrantServices, ancestorId: string, id: string): Promise<{ removed: string; chain_removed: string[] }> {
  return services.store.update((draft) => {
    const records = draft.entries<StoredAgent>(AGENT_PREFIX).map(([, r]) => r);
    if (!GRANT_ID.test(id) || !descendantsOf(records, ancestorId).includes(id)) {
      throw new KeywayError('not_found', `no agent "${id}" among the children of agent "${ancestorId}"`);
    }
    const gone = [id, ...descendantsOf(records, id)];
    dropAgents(draft, gone);
    return { removed: id, chain_removed: gone };
  });
}

function soonest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
