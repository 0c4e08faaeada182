import { formatDuration } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';

// Delegation: an agent (the parent) has a child agent minted for it, with a key of its own, never
// more than the parent. What it admits, and nothing else:
//
// - At minting (checkMint, here): the child's grants are a subset of the parent's as the parent
//   stands then (a parent with every grant may hand on any existing grant; a child given no
//   --grants gets exactly the parent's); its TTL never outlives the parent: not past the parent's
//   own expiry (a parent that is itself a child), not past the parent's max_lease_ttl (or
//   lease_ttl) when the parent has a lease clock; its depth, the generations it may mint below
//   itself, is less than its parent's (a root agent may mint DEFAULT_DEPTH generations, at most
//   MAX_DEPTH). A parent with no key is tied to its children by its identity mapping (identity-tie.ts); one
//   with neither (none can sign in as it) mints nothing.
//   Anything wider is refused `delegation_refused` naming what is wider; nothing is written.
// - At every request (chain.ts, and the proxy's `delegation` stage): a child's request is allowed
//   only when it is allowed for the child and for every ancestor, as each stands at the request
//   (its grants, its rules, its lease, its expiry): a parent narrowed by a reload narrows the
//   child at once. A child whose parent is gone, or whose parent's key is no longer the key it had
//   at minting (rotated, or removed and added again), is not an agent at all: its key fails and
//   its open connections are cut as for a removed agent.
// Everything not listed is refused: a child cannot widen itself, and its record names the parent
// by id and key hash, not by anything the child can present.

/** Generations a root agent may mint below it unless told otherwise. */
export const DEFAULT_DEPTH = 1;
/** No chain is longer than this below its root. */
export const MAX_DEPTH = 3;
/** A child's TTL when none is asked for (never past its parent's, whichever ends first). */
export const DEFAULT_CHILD_TTL_MS = 60 * 60 * 1000;

/** The parent as it stands at minting: what the child is measured against. */
export interface MintingParent {
  readonly id: string;
  /** undefined: every grant. */
  readonly grants: ReadonlySet<string> | undefined;
  /** Epoch ms; undefined: it never expires (a root agent). */
  readonly expiresAt: number | undefined;
  readonly leaseTtlMs: number | undefined;
  readonly maxLeaseTtlMs: number | undefined;
  /** Generations it may still mint below it. */
  readonly depth: number;
  /** Whether it has what ties a child to it: a key, or an identity mapping (identity-tie.ts). */
  readonly hasKey: boolean;
}

/** What is asked for the child; undefined: the parent's (grants), the default (ttl, depth). */
export interface MintRequest {
  readonly grants: readonly string[] | undefined;
  readonly ttlMs: number | undefined;
  readonly depth: number | undefined;
}

/** The child's terms, as they will be stored. */
export interface ChildTerms {
  /** undefined only when the parent has every grant and none were named. */
  readonly grants: readonly string[] | undefined;
  readonly expiresAt: number;
  readonly depth: number;
}

/** Checks a child against its parent; throws delegation_refused naming what would be wider. */
export function checkMint(parent: MintingParent, wanted: MintRequest, now: number): ChildTerms {
  if (!parent.hasKey) refuse(`agent "${parent.id}" has neither a key nor an identity mapping to tie a child to: it cannot delegate`);
  if (parent.depth < 1) refuse(`agent "${parent.id}" may not delegate: it has no delegation depth left`);
  const grants = childGrants(parent, wanted.grants);
  const depth = wanted.depth ?? 0;
  if (!Number.isInteger(depth) || depth < 0) refuse(`depth ${depth}: expected a whole number from 0`);
  if (depth > parent.depth - 1) {
    refuse(`depth ${depth} is more than agent "${parent.id}" may hand on (${parent.depth - 1}: its own depth ${parent.depth}, less one for this child)`);
  }
  return { grants, expiresAt: childExpiry(parent, wanted.ttlMs, now), depth };
}

function childGrants(parent: MintingParent, wanted: readonly string[] | undefined): readonly string[] | undefined {
  if (wanted === undefined) return parent.grants === undefined ? undefined : [...parent.grants].sort();
  if (wanted.length === 0) refuse("grants: name at least one grant, or leave --grants out for the parent's own");
  if (parent.grants === undefined) return [...new Set(wanted)];
  const lacking = wanted.filter((g) => !parent.grants!.has(g));
  if (lacking.length > 0) {
    const plural = lacking.length > 1 ? 's' : '';
    refuse(`agent "${parent.id}" does not hold grant${plural} ${lacking.map((g) => `"${g}"`).join(', ')}: a child holds only its parent's grants`);
  }
  return [...new Set(wanted)];
}

function childExpiry(parent: MintingParent, ttlMs: number | undefined, now: number): number {
  if (ttlMs !== undefined && (!Number.isFinite(ttlMs) || ttlMs <= 0)) refuse('ttl: expected a duration above zero');
  // The parent's clocks: its own expiry, and the longest lease it could hold on any grant.
  const parentLease = parent.maxLeaseTtlMs ?? parent.leaseTtlMs;
  const limits = [
    ...(parent.expiresAt !== undefined ? [{ at: parent.expiresAt, why: `agent "${parent.id}" expires at ${new Date(parent.expiresAt).toISOString()}` }] : []),
    ...(parentLease !== undefined ? [{ at: now + parentLease, why: `agent "${parent.id}"'s leases last at most ${formatDuration(parentLease)}` }] : []),
  ];
  if (parent.expiresAt !== undefined && parent.expiresAt <= now) refuse(`agent "${parent.id}" expired at ${new Date(parent.expiresAt).toISOString()}`);
  const latest = Math.min(...limits.map((l) => l.at));
  if (ttlMs === undefined) return Math.min(now + DEFAULT_CHILD_TTL_MS, latest);
  const past = limits.find((l) => now + ttlMs > l.at);
  if (past) refuse(`ttl ${formatDuration(ttlMs)} would outlive its parent: ${past.why}`);
  return now + ttlMs;
}

function refuse(reason: string): never {
  throw new KeywayError('delegation_refused', reason);
}
