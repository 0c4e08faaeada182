import type { GrantType } from '../config/index.ts';
import { type GrantKind, KINDS } from './types/index.ts';

// The one word a person reads first about a grant (the wallet's "status at a glance"), with a line
// saying why. Derived from facts the listing already has; never from a secret's value.

export type DisplayStatus = 'active' | 'expiring' | 'needs_reconnect' | 'revoked' | 'no secret' | 'waiting_for_login';

/** A token that cannot renew itself (no refresh token) is "expiring" this long before it ends. */
export const TOKEN_EXPIRING_WITHIN_MS = 24 * 3_600_000;
/** An agent's lease on the grant is "ending soon" this long before it ends (said in the detail, not the status). */
export const LEASE_EXPIRING_WITHIN_MS = 15 * 60_000;

export interface DisplayFacts {
  /** The stored or live status: active, needs_reconnect, revoked. */
  status: string;
  /** A secret that can authenticate is there (blank material counts as none). */
  usable: boolean;
  /** Epoch ms of the access token's expiry, if known. */
  tokenExpiresAt: number | undefined;
  /** The grant gets a new token by itself (a refresh token, or client credentials). */
  renewable: boolean;
  leases: ReadonlyArray<{ agent: string; state: string; expires_at: string }>;
  /** A login_capture grant: what fills it (loginCommand). Its secret is the logins captured for it. */
  login?: string | undefined;
}

export function displayStatus(facts: DisplayFacts, now: number): { display_status: DisplayStatus; status_detail: string } {
  if (facts.status === 'revoked') return { display_status: 'revoked', status_detail: 'revoked: connect again or set a new secret to use it' };
  if (facts.status === 'needs_reconnect') {
    return { display_status: 'needs_reconnect', status_detail: 'the provider refused the refresh token: connect again' };
  }
  if (!facts.usable && facts.login !== undefined) return { display_status: 'waiting_for_login', status_detail: `waiting for login: ${facts.login}` };
  if (!facts.usable) return { display_status: 'no secret', status_detail: 'no secret yet: set one to use this grant' };
  const expiry = facts.tokenExpiresAt;
  if (expiry !== undefined && !facts.renewable) {
    const when = new Date(expiry).toISOString();
    if (expiry <= now) return { display_status: 'needs_reconnect', status_detail: `the token expired at ${when} and cannot be refreshed` };
    if (expiry - now <= TOKEN_EXPIRING_WITHIN_MS) {
      return { display_status: 'expiring', status_detail: `the token expires at ${when} and cannot be refreshed` };
    }
  }
  // An agent's lease is that agent's clock, not the grant's: the grant stays active for the others,
  // and the detail names the lease that ends soon.
  const ending = leasesEndingSoon(facts.leases, now)[0];
  if (ending) return { display_status: 'active', status_detail: `agent ${ending.agent}'s lease on it ends at ${ending.expires_at}` };
  return { display_status: 'active', status_detail: 'active' };
}

/** Active leases that end within LEASE_EXPIRING_WITHIN_MS, soonest first (the overview lists them). */
export function leasesEndingSoon<L extends { state: string; expires_at: string }>(leases: ReadonlyArray<L>, now: number): L[] {
  return leases
    .filter((l) => l.state === 'active' && Date.parse(l.expires_at) - now <= LEASE_EXPIRING_WITHIN_MS)
    .sort((a, b) => a.expires_at.localeCompare(b.expires_at));
}

/** A coding agent's name or an agent id as a command line may carry it bare. */
const PLAIN_WORD = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * What fills a login_capture grant that holds no login (one cut short, or never run): for a grant
 * `keyway connect AGENT --login` made (its `coding-agent` label), that command again, which takes
 * such a grant without --replace; for any other, the agent's own login through keyway.
 */
export function loginCommand(grant: { id: string; labels?: Readonly<Record<string, string>> | undefined; agent?: unknown }): string {
  const target = grant.labels?.['coding-agent'];
  if (target === undefined || !PLAIN_WORD.test(target)) return 'log the agent in through keyway (its own login command under keyway run)';
  const agent = typeof grant.agent === 'string' && PLAIN_WORD.test(grant.agent) ? ` --agent ${grant.agent}` : '';
  return `run keyway connect ${target}${grant.id === target ? '' : ` --grant ${grant.id}`}${agent} --login`;
}

/** The command that sets a stored grant's secret: an mtls grant's is its client certificate. */
export function setSecretCommand(id: string, type: string): string {
  // A login grant's tokens come from the agent's own login through keyway (a login cut short, offline
  // at its prompt, leaves the grant with none): `secrets set` cannot fill it, a login again can.
  if (type === 'login_capture')
    return `log in again through keyway: keyway connect AGENT --grant ${id} --login --replace (or take an existing login over with --import --replace)`;
  // A listing's type comes as text (the admin API's JSON): a type this keyway does not know has no kind.
  return (KINDS[type as GrantType] as GrantKind | undefined)?.wire.by === 'connection'
    ? `keyway secrets set ${id} --client-certificate CERT.pem --client-key KEY.pem`
    : `keyway secrets set ${id} --stdin`;
}
