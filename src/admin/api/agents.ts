// Agents and their leases. An agent's key is returned once, when it is made or rotated, never after.

import type { AdminDeps } from '../deps.ts';
import { jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';

const TAGS = ['agents'];

export function agentRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/agents',
      doc: {
        operationId: 'agents.list',
        summary: 'Every agent with where it is defined and the grants it may use',
        tags: TAGS,
        responses: { '200': jsonResponse('The agents', { type: 'object', properties: { agents: { type: 'array', items: { type: 'object' } } } }) },
      },
      handle: () => {
        const agents = deps
          .agents()
          .list()
          .map((a) => ({ id: a.id, source: a.source, grants: a.grants ? [...a.grants] : null }));
        return { status: 200, body: { agents } };
      },
    },
  ];
}
