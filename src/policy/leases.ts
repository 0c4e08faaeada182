import { formatDuration } from '../config/index.ts';
import { ProxyError } from '../errors/index.ts';

// Leases: the second clock. An agent with a `lease_ttl` may use a grant only while it holds an
// unexpired lease on it, whatever the token's own expiry. Pure functions: the caller reads and
// writes the `lease:<agent>:<grant>` records and passes the clock.
//
// - The first use of a grant starts a lease of lease_ttl automatically (checkLease returns it as
//   `startNew` for the caller to store). Once a lease exists it never restarts by itself: when it
//   runs out, only `keyway agents lease` gives a new one.
// - `keyway agents lease AGENT GRANT --ttl D` sets the expiry to now + D (which may shorten a lease),
//   capped at now + max_lease_ttl: no single grant or renewal gives more than max_lease_ttl of
//   unattended access. A live lease keeps its granted_at; a lapsed or revoked one starts afresh.
// - `keyway agents revoke-lease` ends a lease at once by storing it as revoked (not deleting it), so
//   the next request cannot start a fresh automatic lease and undo the revocation.

/**
 * An agent's lease on a grant as stored (`lease:<agent>:<grant>`, credentials/lease-record.ts).
 */
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

/** What the lease clock needs to know about an agent. */
export interface LeaseTerms {
  readonly id: string;
  /** undefined: the agent has no lease clock, and its grants do not expire by lease. */
  readonly leaseTtlMs?: number | undefined;
  readonly maxLeaseTtlMs?: number | undefined;
}

export type LeaseCheck = { ok: true; startNew?: LeaseRecord | undefined } | { ok: false; error: ProxyError };

export type LeaseState = 'not_required' | 'pending' | 'active' | 'expired' | 'revoked';

export interface LeaseStatus {
  state: LeaseState;
  expires_at: string | null;
  /** Milliseconds left on an active lease. */
  remaining_ms: number | null;
}

export interface LeaseRenewal {
  record: LeaseRecord;
  /** The ttl asked for was more than max_lease_ttl and was cut down to it. */
  capped: boolean;
  grantedMs: number;
  /** A live lease was extended (granted_at kept) rather than a new one begun. */
  renewed: boolean;
}

export function leaseRequired(agent: LeaseTerms): boolean {
  return agent.leaseTtlMs !== undefined;
}

/** The lease a first use starts: lease_ttl (never past max_lease_ttl) from now. */
export function startLease(agent: LeaseTerms, grantId: string, now: Date): LeaseRecord {
  const ttl = Math.min(agent.leaseTtlMs ?? 0, agent.maxLeaseTtlMs ?? Number.POSITIVE_INFINITY);
  return { agent: agent.id, grant: grantId, granted_at: now.toISOString(), renewed_at: null, expires_at: new Date(now.getTime() + ttl).toISOString() };
}

/** May this agent use this grant now, as far as the lease clock goes? */
export function checkLease(agent: LeaseTerms, grantId: string, record: LeaseRecord | undefined, now: Date): LeaseCheck {
  if (!leaseRequired(agent)) return { ok: true };
  if (record === undefined) return { ok: true, startNew: startLease(agent, grantId, now) };
  const status = leaseStatus(agent, grantId, record, now);
  if (status.state === 'active') return { ok: true };
  const when = status.state === 'revoked' ? `was revoked at ${record.revoked_at}` : `expired at ${validIso(record.expires_at) ?? 'an unreadable time'}`;
  return {
    ok: false,
    error: new ProxyError('lease_expired', `agent "${agent.id}"'s lease on grant "${grantId}" ${when}`, {
      grant: grantId,
      hint: `keyway agents lease ${agent.id} ${grantId} --ttl ${formatDuration(agent.leaseTtlMs ?? 15 * 60_000)}`,
    }),
  };
}

/** The state of one agent's lease on one grant, for listings and for checkLease. */
export function leaseStatus(agent: LeaseTerms, _grantId: string, record: LeaseRecord | undefined, now: Date): LeaseStatus {
  if (!leaseRequired(agent)) return { state: 'not_required', expires_at: record ? validIso(record.expires_at) : null, remaining_ms: null };
  if (record === undefined) return { state: 'pending', expires_at: null, remaining_ms: null };
  const expiresAt = validIso(record.expires_at);
  if (record.revoked_at !== undefined) return { state: 'revoked', expires_at: expiresAt, remaining_ms: null };
  if (!isLive(record, now)) return { state: 'expired', expires_at: expiresAt, remaining_ms: null };
  return { state: 'active', expires_at: expiresAt, remaining_ms: Date.parse(record.expires_at) - now.getTime() };
}

/** Unrevoked and not yet expired. An unreadable expiry counts as expired: a damaged record grants nothing. */
export function isLive(record: LeaseRecord | undefined, now: Date): record is LeaseRecord {
  if (record === undefined || record.revoked_at !== undefined) return false;
  const expires = Date.parse(record.expires_at);
  return !Number.isNaN(expires) && expires > now.getTime();
}

/** Grants or renews a lease for `ttlMs` from now, capped at max_lease_ttl. */
export function renewLease(agent: LeaseTerms, grantId: string, existing: LeaseRecord | undefined, ttlMs: number, now: Date): LeaseRenewal {
  if (!(ttlMs > 0)) throw new RangeError('a lease ttl must be positive');
  const max = agent.maxLeaseTtlMs;
  const capped = max !== undefined && ttlMs > max;
  const grantedMs = capped ? max : ttlMs;
  const live = isLive(existing, now) ? existing : undefined;
  const stamp = now.toISOString();
  const record: LeaseRecord = {
    agent: agent.id,
    grant: grantId,
    granted_at: live ? live.granted_at : stamp,
    renewed_at: live ? stamp : null,
    expires_at: new Date(now.getTime() + grantedMs).toISOString(),
  };
  return { record, capped, grantedMs, renewed: live !== undefined };
}

/** The record that ends a lease now and keeps it from restarting automatically. */
export function revokeLease(agent: LeaseTerms, grantId: string, existing: LeaseRecord | undefined, now: Date): LeaseRecord {
  if (existing?.revoked_at !== undefined) return existing; // revoking twice changes nothing
  const stamp = now.toISOString();
  const expiresAt = existing ? validIso(existing.expires_at) : null;
  // Keep an earlier expiry: the record should say the lease ended at the first of the two.
  const ended = expiresAt !== null && Date.parse(expiresAt) < now.getTime() ? expiresAt : stamp;
  return {
    agent: agent.id,
    grant: grantId,
    granted_at: existing?.granted_at ?? stamp,
    renewed_at: existing?.renewed_at ?? null,
    expires_at: ended,
    revoked_at: stamp,
  };
}

function validIso(text: string | undefined): string | null {
  if (typeof text !== 'string') return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}
