// Agents and their leases. An agent's key is returned once, when it is made or rotated, never after.
// Every write calls the operation the CLI calls (src/operations/), and the router audits it.

import { addAgent, listAgents, removeAgent, rotateAgentKey, type AgentListing } from '../../operations/agents.ts';
import { setAgentGrants, setAgentLimits } from '../../operations/agent-grants.ts';
import { setAgentLeaseTerms } from '../../operations/agent-lease-terms.ts';
import type { LimitsInput } from '../../config/limits.ts';
import { endLease, grantLease } from '../../operations/leases.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';
import { AdminError } from '../../errors/index.ts';
import { optionalString, optionalStrings, readBody, requiredString } from './json-input.ts';

const TAGS = ['agents'];
const NOT_FOUND = errorResponse('No such agent (or, for a lease, no such grant)');
const IN_CONFIG = errorResponse('The agent is defined in the config file');
const BAD_BODY = {
  '400': errorResponse('A field is missing, of the wrong type, unknown, or refused (the message names it)'),
  '413': errorResponse('The body is over 64 KiB'),
  '415': errorResponse('The body is not Content-Type: application/json'),
};
const KEY_ANSWER = {
  type: 'object',
  properties: { agent: { type: 'object' }, key: { type: 'string', description: 'Shown once' }, proxy_url: { type: 'string' } },
};
const LEASE_REFUSED = errorResponse('The agent may not use the grant, or has no lease_ttl (its access is not leased)');

const LIMITS_SCHEMA = {
  type: ['object', 'null'],
  description: "The config's limits: form (a store agent's own; a config agent's are set in the config)",
  properties: {
    rate: { type: 'string', examples: ['60/min'] },
    burst: { type: 'integer' },
    quota: { type: 'object', properties: { requests: { type: 'string', examples: ['10000/day'] }, bytes: { type: 'string', examples: ['2GiB/day'] } } },
  },
};

/** `limits` as sent: an object (checked by the operation, as the config's limits: are), or absent. */
function limitsField(body: Record<string, unknown>): LimitsInput | undefined {
  const value = body['limits'];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new AdminError('bad_request', 'limits: expected an object such as {"rate": "60/min"}');
  return value as LimitsInput;
}

/** A duration field that may be null (none), or absent (unchanged). */
function nullableString(body: Record<string, unknown>, name: string): string | null | undefined {
  const value = body[name];
  if (value === null) return null;
  return optionalString(body, name);
}

/** An agent as the API shows it: its grants, and each grant's lease beside the token's expiry. */
function agentView(agent: AgentListing) {
  const { access, ...rest } = agent;
  return { ...rest, leases: access };
}

export function agentRoutes(deps: AdminDeps): Route[] {
  const findAgent = (id: string) => {
    const found = listAgents(deps.services).find((a) => a.id === id);
    return found ? agentView(found) : null;
  };
  return [
    {
      method: 'GET',
      path: '/api/agents',
      doc: {
        operationId: 'agents.list',
        summary:
          'Every agent with where it is defined, the grants it may use and its leases (both clocks); a delegated agent with its parent, expires_at and chain (root first)',
        tags: TAGS,
        responses: { '200': jsonResponse('The agents', { type: 'object', properties: { agents: { type: 'array', items: { type: 'object' } } } }) },
      },
      handle: () => ({ status: 200, body: { agents: listAgents(deps.services).map(agentView) } }),
    },
    {
      method: 'POST',
      path: '/api/agents',
      doc: {
        operationId: 'agents.create',
        summary: 'Add an agent; its key is in this answer only (keyway keeps a hash)',
        tags: TAGS,
        requestBody: jsonBody({
          type: 'object',
          required: ['id'],
          properties: {
            id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
            grants: { type: 'array', items: { type: 'string' } },
            lease_ttl: { type: 'string', examples: ['1h'] },
            max_lease_ttl: { type: 'string', examples: ['8h'] },
            limits: LIMITS_SCHEMA,
          },
        }),
        responses: { '201': jsonResponse('Added: the key, once, and the proxy URL with it', KEY_ANSWER), ...BAD_BODY, '409': errorResponse('The id exists') },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['id', 'grants', 'lease_ttl', 'max_lease_ttl', 'limits']);
        const id = requiredString(body, 'id');
        const added = await addAgent(
          deps.services,
          {
            id,
            grants: optionalStrings(body, 'grants'),
            leaseTtl: optionalString(body, 'lease_ttl'),
            maxLeaseTtl: optionalString(body, 'max_lease_ttl'),
            limits: limitsField(body),
          },
          'api',
        );
        const answer = { agent: findAgent(id), key: added.key, proxy_url: deps.proxyUrl({ id, key: added.key }), first_agent: added.firstAgent };
        return { status: 201, body: answer, audit: { agent: id } };
      },
    },
    {
      method: 'POST',
      path: '/api/agents/{agent}/rotate-key',
      doc: {
        operationId: 'agents.rotate_key',
        summary: 'Give the agent a new key (in this answer only); the old key is refused from now on',
        tags: TAGS,
        responses: { '200': jsonResponse('The new key, once', KEY_ANSWER), '404': NOT_FOUND, '409': IN_CONFIG },
      },
      handle: async (ctx) => {
        const id = ctx.params['agent'] ?? '';
        const { key } = await rotateAgentKey(deps.services, id);
        return { status: 200, body: { agent: findAgent(id), key, proxy_url: deps.proxyUrl({ id, key }) } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/agents/{agent}',
      doc: {
        operationId: 'agents.update',
        summary:
          'Change the grants a store agent may use (its key and lease terms stay, leases on grants it loses end), its limits (null: none), or its lease terms (null: none; its key stays)',
        tags: TAGS,
        requestBody: jsonBody({
          type: 'object',
          properties: {
            grants: { type: 'array', items: { type: 'string' }, description: 'Grant ids, or ["*"] for every grant' },
            limits: LIMITS_SCHEMA,
            lease_ttl: { type: ['string', 'null'], examples: ['1h'], description: 'null: no lease clock (its leases are dropped, as when one is given)' },
            max_lease_ttl: { type: ['string', 'null'], examples: ['8h'], description: 'null: no cap; a lower one cuts live leases down to it' },
          },
        }),
        responses: { '200': jsonResponse('Changed: the agent as listed'), ...BAD_BODY, '404': NOT_FOUND, '409': IN_CONFIG },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['grants', 'limits', 'lease_ttl', 'max_lease_ttl']);
        const grants = optionalStrings(body, 'grants');
        const terms = { leaseTtl: nullableString(body, 'lease_ttl'), maxLeaseTtl: nullableString(body, 'max_lease_ttl') };
        const leaseTerms = terms.leaseTtl !== undefined || terms.maxLeaseTtl !== undefined;
        if (grants === undefined && !('limits' in body) && !leaseTerms)
          throw new AdminError(
            'bad_request',
            'grants, limits, lease_ttl or max_lease_ttl: required (grant ids, or ["*"] for every grant; limits, or null for none; a duration, or null for none)',
          );
        const id = ctx.params['agent'] ?? '';
        if (grants !== undefined) await setAgentGrants(deps.services, id, grants, 'api');
        if ('limits' in body) await setAgentLimits(deps.services, id, body['limits'] === null ? null : (limitsField(body) ?? null), 'api');
        if (leaseTerms) await setAgentLeaseTerms(deps.services, id, terms, 'api');
        return { status: 200, body: { agent: findAgent(id) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/agents/{agent}',
      doc: {
        operationId: 'agents.delete',
        summary: 'Remove an agent and its leases, with every agent delegated below it (named in `descendants`)',
        tags: TAGS,
        responses: { '200': jsonResponse('Removed'), '404': NOT_FOUND, '409': IN_CONFIG },
      },
      handle: async (ctx) => ({ status: 200, body: await removeAgent(deps.services, ctx.params['agent'] ?? '') }),
    },
    {
      method: 'PUT',
      path: '/api/agents/{agent}/leases/{grant}',
      doc: {
        operationId: 'agents.lease',
        summary: 'Grant or renew the agent’s lease on a grant: it ends `ttl` from now (default lease_ttl), never past max_lease_ttl',
        tags: TAGS,
        requestBody: jsonBody({ type: 'object', properties: { ttl: { type: 'string', examples: ['30m'] } } }, false),
        responses: { '200': jsonResponse('The lease, and whether the ttl was capped'), ...BAD_BODY, '404': NOT_FOUND, '409': LEASE_REFUSED },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['ttl'], true);
        const result = await grantLease(deps.services, ctx.params['agent'] ?? '', ctx.params['grant'] ?? '', optionalString(body, 'ttl'), 'api');
        const { lease, ...facts } = result;
        return { status: 200, body: { lease: { ...lease, ...facts } } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/agents/{agent}/leases/{grant}',
      doc: {
        operationId: 'agents.revoke_lease',
        summary: 'End the agent’s lease on a grant at once; it does not restart by itself',
        tags: TAGS,
        responses: { '200': jsonResponse('The ended lease'), '404': NOT_FOUND, '409': LEASE_REFUSED },
      },
      handle: async (ctx) => ({ status: 200, body: { lease: await endLease(deps.services, ctx.params['agent'] ?? '', ctx.params['grant'] ?? '') } }),
    },
  ];
}
