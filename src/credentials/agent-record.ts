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
}

export const agentRecordId = (id: string): string => `agent:${id}`;
export const AGENT_PREFIX = 'agent:';
