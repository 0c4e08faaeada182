// Every admin route, from each area's module. A new area adds its module here, and nowhere else.

import type { AdminDeps } from '../deps.ts';
import type { Route } from '../router.ts';
import { agentRoutes } from './agents.ts';
import { delegationRoutes } from './delegation.ts';
import { approvalRoutes } from './approvals.ts';
import { auditRoutes } from './audit.ts';
import { grantRoutes } from './grants.ts';
import { grantTypeRoutes } from './grant-types.ts';
import { oauthRoutes } from './oauth.ts';
import { operateRoutes } from './operate.ts';
import { overviewRoutes } from './overview.ts';
import { policyRoutes } from './policy.ts';
import { sessionRoutes, type SessionDeps } from './session.ts';
import { slackRoutes } from './slack.ts';
import { spendRoutes } from './spend.ts';

/** `table()` is the finished table, for the routes that describe it (/api/openapi.json). */
export function adminRoutes(deps: AdminDeps, table: () => readonly Route[], session: SessionDeps): Route[] {
  return [
    ...operateRoutes(deps, table),
    ...grantRoutes(deps),
    ...grantTypeRoutes(),
    ...agentRoutes(deps),
    ...delegationRoutes(deps),
    ...approvalRoutes(deps),
    ...slackRoutes(deps),
    ...auditRoutes(deps),
    ...oauthRoutes(deps),
    ...sessionRoutes(session),
    ...overviewRoutes(deps),
    ...spendRoutes(deps),
    ...policyRoutes(deps),
  ];
}
