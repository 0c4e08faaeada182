import { DEFAULT_DEPTH, MAX_DEPTH } from './terms.ts';

// A child agent's place in its chain, resolved each time the agent table is built (on every store
// change and reload), so a parent narrowed or removed narrows or removes its children at once.

/** How a child's record names its parent: by id, and by the parent's key hash at minting. */
export interface ChildLink {
  readonly parent: string;
  /** Hex SHA-256 of the parent's key when the child was minted (a keyless parent's identity tie): a rotated or re-added parent has another. */
  readonly parentKeySha256: string;
}

/** What the resolution reads and writes of an agent (credentials/agents.ts's Agent has these). */
export interface ChainNode {
  readonly id: string;
  readonly grants: ReadonlySet<string> | undefined;
  readonly keySha256: Buffer | undefined;
  /** A keyless agent's identity mapping, hashed (identity-tie.ts): what ties its children when it has no key. */
  readonly identityTieSha256?: Buffer | undefined;
  /** Its ancestors, root first, nearest last; undefined: a root agent. */
  readonly parents?: readonly string[] | undefined;
  /** Epoch ms: its own expiry, or an ancestor's if sooner. */
  readonly expiresAt?: number | undefined;
  /** Generations it may mint below it; undefined: DEFAULT_DEPTH (a config agent). */
  readonly delegationDepth?: number | undefined;
}

/**
 * Resolves every child in `agents` (those `links` names) against its parent as it stands: its
 * grants cut to the parent's, its expiry to the parent's, its depth below the parent's and within
 * MAX_DEPTH of its root, its parents listed. A child whose parent
 * is missing, holds another key, or sits past MAX_DEPTH (a record edited by hand, a loop) is taken
 * out of the table: no key reaches it. Returns a new map; `agents` is left as it was.
 */
export function linkChildren<A extends ChainNode>(agents: ReadonlyMap<string, A>, links: ReadonlyMap<string, ChildLink>): Map<string, A> {
  const resolved = new Map<string, A | undefined>();
  const resolve = (id: string, seen: readonly string[]): A | undefined => {
    if (resolved.has(id)) return resolved.get(id);
    const agent = agents.get(id);
    const link = links.get(id);
    if (agent === undefined || link === undefined) {
      resolved.set(id, agent);
      return agent;
    }
    // Deeper than any chain may be, or a loop: no agent.
    if (seen.length > MAX_DEPTH || seen.includes(id)) return undefined;
    const parent = resolve(link.parent, [...seen, id]);
    const tie = parent === undefined ? undefined : parentTie(parent);
    const linked = parent === undefined || tie === undefined || tie.toString('hex') !== link.parentKeySha256 ? undefined : narrowed(agent, parent);
    if (linked !== undefined && (linked.parents?.length ?? 0) > MAX_DEPTH) {
      resolved.set(id, undefined);
      return undefined;
    }
    resolved.set(id, linked);
    return linked;
  };
  const out = new Map<string, A>();
  for (const id of agents.keys()) {
    const agent = resolve(id, []);
    if (agent !== undefined) out.set(id, agent);
  }
  return out;
}

/** What proves a parent, which its children's records name: its key's hash, or a keyless agent's identity tie. */
export function parentTie(agent: Pick<ChainNode, 'keySha256' | 'identityTieSha256'>): Buffer | undefined {
  return agent.keySha256 ?? agent.identityTieSha256;
}

function narrowed<A extends ChainNode>(child: A, parent: A): A {
  const grants = parent.grants === undefined ? child.grants : new Set([...(child.grants ?? parent.grants)].filter((g) => parent.grants!.has(g)));
  const expiresAt = [child.expiresAt, parent.expiresAt].filter((t): t is number => t !== undefined);
  const parents = [...(parent.parents ?? []), parent.id];
  // Minting stored a depth below the parent's; a record edited by hand may say more: never more
  // than the parent may hand on, nor past MAX_DEPTH generations below the root.
  const depth = Math.max(0, Math.min(child.delegationDepth ?? 0, (parent.delegationDepth ?? DEFAULT_DEPTH) - 1, MAX_DEPTH - parents.length));
  return {
    ...child,
    grants,
    parents,
    expiresAt: expiresAt.length === 0 ? undefined : Math.min(...expiresAt),
    delegationDepth: depth,
  };
}

/** The audit line's chain for an agent: root first, the agent last; undefined for a root agent. */
export function chainOf(agent: Pick<ChainNode, 'id' | 'parents'>): string[] | undefined {
  return agent.parents === undefined || agent.parents.length === 0 ? undefined : [...agent.parents, agent.id];
}

/** Every agent whose chain runs through `id`, nearest first: removed with it. */
export function descendantsOf(records: ReadonlyArray<{ readonly id: string; readonly parent?: string | undefined }>, id: string): string[] {
  const out: string[] = [];
  let generation = [id];
  while (generation.length > 0) {
    const next = records.filter((r) => r.parent !== undefined && generation.includes(r.parent) && !out.includes(r.id) && r.id !== id).map((r) => r.id);
    out.push(...next);
    generation = next;
  }
  return out;
}
