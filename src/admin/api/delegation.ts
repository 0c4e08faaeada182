import { delegateAgent } from '../../operations/delegation.ts';
import { AdminError } from '../../errors/index.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';
import { optionalString, optionalStrings, readBody, requiredString } from './json-input.ts';

// `keyway agents delegate` on the admin API: a child agent minted for a parent, never wider
// (src/delegation/terms.ts). The same operation as the command line's; its key in this answer only.

export function delegationRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/agents/{agent}/delegate',
      doc: {
        operationId: 'agent.delegate',
        summary: "Mint a child agent never wider than this one: its grants a subset, its TTL within the parent's; its key in this answer only",
        tags: ['agents'],
        requestBody: jsonBody({
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
            grants: { type: 'array', items: { type: 'string' } },
            rules: { type: 'array', items: { type: 'object' }, description: "The config's rule form; each on a grant the child holds" },
            ttl: { type: 'string', examples: ['30m'] },
            depth: { type: 'integer', minimum: 0, maximum: 3 },
            budget: {
              description: "The child's own spend budget: usd=AMOUNT/PER or tokens=COUNT/PER, or the config's budget form without agent, grant or end_user",
              oneOf: [{ type: 'string', examples: ['usd=2/day'] }, { type: 'object' }],
            },
          },
        }),
        responses: {
          '201': jsonResponse('Minted: the key, once, the proxy URL with it, and the chain', {
            type: 'object',
            properties: { id: { type: 'string' }, key: { type: 'string', description: 'Shown once' }, proxy_url: { type: 'string' }, chain: { type: 'array' } },
          }),
          '400': errorResponse('A field is missing, of the wrong type, unknown, or refused (the message names it)'),
          '403': errorResponse('delegation_refused: the child would be wider than its parent (the message names the grant, TTL or depth)'),
          '404': errorResponse('No such parent agent'),
          '409': errorResponse('An agent of that name exists'),
        },
      },
      handle: async (ctx) => {
        const parent = ctx.params['agent'] ?? '';
        const body = await readBody(ctx, ['name', 'grants', 'rules', 'ttl', 'depth', 'budget']);
        const depth = body['depth'];
        if (depth !== undefined && !Number.isInteger(depth)) throw new AdminError('bad_request', 'depth: expected a whole number');
        const name = requiredString(body, 'name');
        const child = await delegateAgent(
          deps.services,
          parent,
          {
            name,
            grants: optionalStrings(body, 'grants'),
            ttl: optionalString(body, 'ttl'),
            depth: depth as number | undefined,
            rules: body['rules'],
            budget: body['budget'],
          },
          'api',
          // A config parent's key is read where the running proxy reads it.
          deps.env,
        );
        return { status: 201, body: { ...child, proxy_url: deps.proxyUrl({ id: child.id, key: child.key }) }, audit: { agent: name } };
      },
    },
  ];
}
