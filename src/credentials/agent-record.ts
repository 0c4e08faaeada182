import type { LimitsInput } from '../config/limits.ts';

// Agents made with `keyway agents add` live in the store as `agent:<id>`; only a hash of the key.
export interface StoredAgent {
  id: string;
  /** SHA-256 of the key, hex. Keys are 32 random bytes, so a fast hash is enough (no dictionary). */
  key_sha256: string;
  grants?: string[] | undefined;
  lease_ttl_ms?: number | undefined;
  max_lease_ttl_ms?: number | undefined;
  /** Its limits, as written (`{rate: "60/min", burst: 20, quota: {requests: "10000/day"}}`): the config's `limits:` form. */
  limits?: LimitsInput | undefined;
  created_at: string;
  /** A child (keyway agents delegate): its parent's id. Records without it (every store before delegation) are root agents. */
  parent?: string | undefined;
  /** The parent's key hash (hex) at minting: a parent whose key is rotated, or removed and added again, no longer has this child. */
  parent_key_sha256?: string | undefined;
  /** A child's expiry, ISO. */
  expires_at?: string | undefined;
  /** A child's own rules (`agents delegate --rules FILE`), as the config's schema read them at minting. */
  rules?: unknown[] | undefined;
  /** Generations it may mint below it (src/delegation/terms.ts); absent: DEFAULT_DEPTH for a root, 0 for a child. */
  delegation_depth?: number | undefined;
  /** A child's own spend budget (`agents delegate --budget`), as the config's schema read it (delegation/child-budget.ts). */
  budget?: unknown;
}

export const agentRecordId = (id: string): string => `agent:${id}`;
export const AGENT_PREFIX = 'agent:';
