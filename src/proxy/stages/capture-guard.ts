import type { Grant } from '../../credentials/grant.ts';
import type { ProxyTables } from '../../credentials/tables.ts';
import type { Connection } from '../connection.ts';
import { ownedBy } from '../../capture/core/settings.ts';
import type { Decisions } from '../contract.ts';
import type { TunnelGuard } from './hooks.ts';

// An agent that a capture grant serves holds placeholders; with the grant's
// capture.guard_other_hosts (the default), its connections to hosts no grant covers are read too
// (TLS terminated, nothing injected, every request forwarded as it came) so that a placeholder sent
// there is refused and audited (stage placeholders) instead of leaving unseen in a blind tunnel.

const guardingGrants = new WeakMap<ProxyTables, readonly Grant[]>();

/** The tables' capture grants that guard other hosts, found once per table build. */
function guarding(tables: ProxyTables): readonly Grant[] {
  let found = guardingGrants.get(tables);
  if (found === undefined) {
    found = tables.router.list().filter((g) => g.logins?.guardOtherHosts === true);
    guardingGrants.set(tables, found);
  }
  return found;
}

/** Whether a connection to a host no grant covers is read rather than tunnelled, for its agent's placeholders. */
export function guardsOtherHosts(runtime: Pick<Decisions, 'tables'>, conn: Connection): boolean {
  const grants = guarding(runtime.tables());
  if (grants.length === 0) return false;
  const allowed = conn.agent.grants;
  const agent = conn.agent.id;
  return grants.some((g) => (allowed === undefined || allowed.has(g.id)) && (g.logins === undefined || ownedBy(g.logins, agent)));
}

/** Tunnel guard "capture-guard" (stages/index.ts TUNNEL_GUARDS). */
export const captureGuard: TunnelGuard = { name: 'capture-guard', reads: guardsOtherHosts };
