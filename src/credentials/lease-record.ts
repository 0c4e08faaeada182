// An agent's lease on a grant (the second clock, beside the token's own expiry), stored as
// `lease:<agent>:<grant>`. Agent and grant ids are slugs without `:`, so the id is unambiguous.
// The record's shape is the lease decision's input and output (policy/leases.ts), so it lives there.
export type { LeaseRecord } from '../policy/leases.ts';

export const LEASE_PREFIX = 'lease:';
export const leaseRecordId = (agent: string, grant: string): string => `${LEASE_PREFIX}${agent}:${grant}`;
export const agentLeasePrefix = (agent: string): string => `${LEASE_PREFIX}${agent}:`;
