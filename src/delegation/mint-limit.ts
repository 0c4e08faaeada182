// How fast, and how wide, one parent may mint children through keyway's door (the self-service
// `POST https://keyway.internal/delegate`): an agent that loops on minting must not fill the store
// nor bury the audit log. What it admits, per parent, and nothing more:
// - at most MINTS_PER_WINDOW mints within any MINT_WINDOW_MS (a sliding window: the last mints'
//   times are kept in the store beside the agents, so every worker and replica on that store counts
//   the same mints, and a child revoked at once still counts);
// - at most MAX_LIVE_CHILDREN children alive at once (its own, not their descendants: each of those
//   is counted against its own parent).
// Past either, the mint is refused `delegation_limited` with the seconds until one is free. Expired
// children of the parent are swept from the store at its next mint (operations/delegation.ts), so a
// parent that mints within its limits forever still holds no more than MAX_LIVE_CHILDREN records.

/** Mints one parent may make through the door within MINT_WINDOW_MS. */
export const MINTS_PER_WINDOW = 10;
export const MINT_WINDOW_MS = 60_000;
/** Children one parent may have alive at once through the door. */
export const MAX_LIVE_CHILDREN = 20;

/** The store record of a parent's last mints through the door: `delegation-mints:<parent id>`. */
export interface MintTimes {
  parent: string;
  /** Epoch ms of its mints within the window, oldest first. */
  at: number[];
}

export const MINT_TIMES_PREFIX = 'delegation-mints:';
export const mintTimesId = (parent: string): string => `${MINT_TIMES_PREFIX}${parent}`;

export type MintVerdict = { ok: true; at: number[] } | { ok: false; reason: string; retryAfterS: number };

/**
 * Whether one more mint is admitted now: `at` are the parent's earlier mint times (any order, any
 * age: a clock set back counts them as recent), `live` its children alive now. On yes, the times
 * to store, this mint's included.
 */
export function admitMint(parent: string, at: readonly number[], live: number, now: number): MintVerdict {
  const recent = at.filter((t) => Number.isFinite(t) && t > now - MINT_WINDOW_MS).sort((a, b) => a - b);
  if (recent.length >= MINTS_PER_WINDOW) {
    const freeAt = recent[recent.length - MINTS_PER_WINDOW]! + MINT_WINDOW_MS;
    return {
      ok: false,
      reason: `agent "${parent}" minted ${recent.length} children within ${MINT_WINDOW_MS / 1000}s: at most ${MINTS_PER_WINDOW}`,
      retryAfterS: Math.max(1, Math.ceil((freeAt - now) / 1000)),
    };
  }
  if (live >= MAX_LIVE_CHILDREN) {
    return {
      ok: false,
      reason: `agent "${parent}" has ${live} live children: at most ${MAX_LIVE_CHILDREN} (revoke one, or wait for one to expire)`,
      retryAfterS: 60,
    };
  }
  return { ok: true, at: [...recent, now] };
}
