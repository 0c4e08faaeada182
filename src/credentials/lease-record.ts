// An agent's lease on a grant (the second clock, beside the token's own expiry), stored as
// `lease:<agent>:<grant>`. Agent and grant ids are slugs without `:`, so the id is unambiguous.
export interface LeaseRecord {
  agent: string;
  grant: string;
  /** ISO time after which the agent may not use the grant. */
  expires_at: string;
  /** When this lease began: the first use (automatic) or a `keyway agents lease` after a lapse. */
  granted_at: string;
  /** The last `keyway agents lease` that extended a live lease; null until then. */
  renewed_at: string | null;
  /** Set by `keyway agents revoke-lease`: the lease ended then, and does not restart by itself. */
  revoked_at?: string | undefined;
}

export const LEASE_PREFIX = 'lease:';
export const leaseRecordId = (agent: string, grant: string): string => `${LEASE_PREFIX}${agent}:${grant}`;
export const agentLeasePrefix = (agent: string): string => `${LEASE_PREFIX}${agent}:`;
