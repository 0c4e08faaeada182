// Grants: the wallet. Never a secret value in any answer: listings say only whether one is set.

import { listGrants } from '../../credentials/grant-listing.ts';
import type { AdminDeps } from '../deps.ts';
import { jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';

const TAGS = ['grants'];

export function grantRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/grants',
      doc: {
        operationId: 'grants.list',
        summary: 'Every grant with its status, type, domains, scopes, both clocks and last use',
        tags: TAGS,
        responses: { '200': jsonResponse('The grants', { type: 'object', properties: { grants: { type: 'array', items: { type: 'object' } } } }) },
      },
      handle: () => ({ status: 200, body: { grants: listGrants(deps.services) } }),
    },
  ];
}
