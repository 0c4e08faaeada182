// The dashboard's overview: the last hour of proxied requests minute by minute (by decision), the
// token refreshes and the refusal codes in it, and the grants by status. Built from what the process
// already counts (observability/counting-audit.ts) and the store: no log is read to answer it. No secret in it.
// Grants are counted by the status the wallet shows (display_status, grant-display.ts), so the two
// pages cannot disagree; an agent's lease ending soon is listed beside them, not counted as a status.

import { leasesEndingSoon } from '../../credentials/grant-display.ts';
import { listGrants } from '../../credentials/grant-listing.ts';
import type { AdminDeps } from '../deps.ts';
import { jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';

const COUNT = { type: 'integer', minimum: 0 };
const MINUTE_SCHEMA = {
  type: 'object',
  properties: { minute: { type: 'string' }, inject: COUNT, tunnel: COUNT, deny: COUNT, error: COUNT, refreshed: COUNT, codes: { type: 'object' } },
};

export function overviewRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/overview',
      doc: {
        operationId: 'overview',
        summary: 'The last hour at a glance: requests per minute by decision, token refreshes, refusal and error codes, grants by status',
        tags: ['operate'],
        responses: {
          '200': jsonResponse('The overview', {
            type: 'object',
            properties: {
              minutes: { type: 'array', items: MINUTE_SCHEMA, description: 'Oldest first, the current minute last' },
              totals: { type: 'object', properties: { inject: COUNT, tunnel: COUNT, deny: COUNT, error: COUNT, refreshed: COUNT } },
              codes: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, count: COUNT } } },
              grants: { type: 'object', description: 'Grant count by display_status, as GET /api/grants shows each (active, expiring, no secret, …)' },
              leases_ending: {
                type: 'array',
                description: 'Active agent leases that end within 15 minutes, soonest first',
                items: { type: 'object', properties: { agent: { type: 'string' }, grant: { type: 'string' }, expires_at: { type: 'string' } } },
              },
              agents: COUNT,
              audit: { type: 'string', enum: ['ok', 'failing'] },
              started_at: { type: 'string' },
            },
          }),
        },
      },
      handle: async () => ({ status: 200, body: await overviewOf(deps) }),
    },
  ];
}

async function overviewOf(deps: AdminDeps): Promise<Record<string, unknown>> {
  const activity = await deps.activity();
  const totals = { inject: 0, tunnel: 0, deny: 0, error: 0, refreshed: 0 };
  const codes = new Map<string, number>();
  for (const m of activity.minutes) {
    totals.inject += m.inject;
    totals.tunnel += m.tunnel;
    totals.deny += m.deny;
    totals.error += m.error;
    totals.refreshed += m.refreshed;
    for (const [code, n] of Object.entries(m.codes)) codes.set(code, (codes.get(code) ?? 0) + n);
  }
  const grants: Record<string, number> = {};
  const listed = listGrants(deps.services);
  for (const g of listed) grants[g.display_status] = (grants[g.display_status] ?? 0) + 1;
  const now = Date.now();
  const leasesEnding = listed
    .flatMap((g) => leasesEndingSoon(g.leases, now).map((l) => ({ agent: l.agent, grant: g.id, expires_at: l.expires_at })))
    .sort((a, b) => a.expires_at.localeCompare(b.expires_at));
  return {
    minutes: activity.minutes,
    totals,
    codes: [...codes].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count),
    grants,
    leases_ending: leasesEnding,
    agents: deps.agents().list().length,
    audit: deps.audit.healthy ? 'ok' : 'failing',
    started_at: activity.started_at,
  };
}
