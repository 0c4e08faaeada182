// Grants: the wallet. Never a secret value in any answer: listings say only whether one is set.
// Every write calls the operation the CLI calls (src/operations/), and the router audits it.

import { listGrants } from '../../credentials/grant-listing.ts';
import { addGrant, removeGrant, showGrant, updateGrant } from '../../operations/grants.ts';
import { setSecret } from '../../operations/secrets.ts';
import { refreshGrant, revokeGrant, type TokenContext } from '../../operations/tokens.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonBody, jsonResponse, schemaRef } from '../openapi.ts';
import type { Route } from '../router.ts';
import { readBody, secretField, withoutNulls } from './json-input.ts';

const TAGS = ['grants'];
const grantAnswer = (description: string) => jsonResponse(description, { type: 'object', properties: { grant: schemaRef('Grant') } });
const NOT_FOUND = errorResponse('No such grant');
const BAD_BODY = {
  '400': errorResponse('A field is missing, of the wrong type, unknown, or refused (the message names it)'),
  '413': errorResponse('The body is over 64 KiB'),
  '415': errorResponse('The body is not Content-Type: application/json'),
};

export function grantRoutes(deps: AdminDeps): Route[] {
  const tokenContext = (): TokenContext => ({ services: deps.services, env: deps.env, tools: deps.tokens });
  return [
    {
      method: 'GET',
      path: '/api/grants',
      doc: {
        operationId: 'grants.list',
        summary: 'Every grant with its status at a glance, type, domains, scopes, account, labels, both clocks and last use',
        tags: TAGS,
        responses: { '200': jsonResponse('The grants', { type: 'object', properties: { grants: { type: 'array', items: schemaRef('Grant') } } }) },
      },
      handle: () => ({ status: 200, body: { grants: listGrants(deps.services) } }),
    },
    {
      method: 'GET',
      path: '/api/grants/{grant}',
      doc: { operationId: 'grants.show', summary: 'One grant', tags: TAGS, responses: { '200': grantAnswer('The grant'), '404': NOT_FOUND } },
      handle: (ctx) => ({ status: 200, body: { grant: showGrant(deps.services, ctx.params['grant'] ?? '') } }),
    },
    {
      method: 'POST',
      path: '/api/grants',
      doc: {
        operationId: 'grants.create',
        summary: 'Add a grant; its secret, if given, is write-only',
        tags: TAGS,
        requestBody: jsonBody(schemaRef('GrantCreate')),
        responses: {
          '201': grantAnswer('Added; `warnings` lists grants whose domains overlap'),
          ...BAD_BODY,
          '409': errorResponse('The id exists, in the store or the config'),
        },
      },
      handle: async (ctx) => {
        const { grant, warnings } = await addGrant(deps.services, withoutNulls(await ctx.body()), 'api');
        return { status: 201, body: { grant, warnings }, audit: { grant: grant.id } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/grants/{grant}',
      doc: {
        operationId: 'grants.update',
        summary: 'Change domains, injection, labels, allow_range or require_purpose; the secret and tokens stay',
        tags: TAGS,
        requestBody: jsonBody(schemaRef('GrantChange')),
        responses: { '200': grantAnswer('Changed'), ...BAD_BODY, '404': NOT_FOUND, '409': errorResponse('The grant is defined in the config file') },
      },
      handle: async (ctx) => {
        const change = withoutNulls(await ctx.body());
        const { grant, warnings } = await updateGrant(deps.services, ctx.params['grant'] ?? '', change, 'api');
        return { status: 200, body: { grant, warnings } };
      },
    },
    {
      method: 'PUT',
      path: '/api/grants/{grant}/secret',
      doc: {
        operationId: 'grants.set_secret',
        summary: 'Set or rotate the secret (write-only); the grant becomes active with the new material',
        tags: TAGS,
        requestBody: jsonBody(schemaRef('GrantSecret')),
        responses: { '200': grantAnswer('Set'), ...BAD_BODY, '404': NOT_FOUND, '409': errorResponse('The grant is defined in the config file') },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['secret']);
        const secret = secretField(body, true) as string | Record<string, unknown>;
        const { grant, created } = await setSecret(deps.services, ctx.params['grant'] ?? '', secret);
        return { status: 200, body: { grant, created }, audit: { grant: grant.id } };
      },
    },
    {
      method: 'POST',
      path: '/api/grants/{grant}/refresh',
      doc: {
        operationId: 'grants.refresh',
        summary: "Refresh the access token (or assume an aws_sigv4 grant's role) now, in the running proxy's single flight",
        tags: TAGS,
        responses: {
          '200': jsonResponse('Refreshed: the new expiry, never the token'),
          '400': errorResponse('Only oauth2 and client_credentials grants, and aws_sigv4 grants with assume_role, refresh'),
          '404': NOT_FOUND,
          '409': errorResponse(
            'The grant needs reconnecting (the provider refused its refresh token, or it was revoked: grant_needs_reconnect), or has no secret yet (grant_no_secret)',
          ),
          '502': errorResponse('The token endpoint (STS for a role) failed or could not be reached'),
        },
      },
      handle: async (ctx) => {
        const id = ctx.params['grant'] ?? '';
        // A refused refresh token answers 409, not 401 (errors/codes.ts, grant_needs_reconnect's adminStatus).
        const result = await refreshGrant(tokenContext(), id);
        return { status: 200, body: { grant: showGrant(deps.services, id), token_expires_at: result.token_expires_at } };
      },
    },
    {
      method: 'POST',
      path: '/api/grants/{grant}/revoke',
      doc: {
        operationId: 'grants.revoke',
        summary: 'Revoke the tokens at the provider where it can, then mark the grant revoked either way',
        tags: TAGS,
        responses: { '200': jsonResponse('Revoked; `provider` says what the provider answered'), '404': NOT_FOUND },
      },
      handle: async (ctx) => {
        const id = ctx.params['grant'] ?? '';
        const result = await revokeGrant(tokenContext(), id);
        return { status: 200, body: { grant: showGrant(deps.services, id), status: result.status, provider: result.provider } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/grants/{grant}',
      doc: {
        operationId: 'grants.delete',
        summary: 'Remove a grant with its tokens',
        tags: TAGS,
        responses: { '200': jsonResponse('Removed'), '404': NOT_FOUND, '409': errorResponse('The grant is defined in the config file') },
      },
      handle: async (ctx) => ({ status: 200, body: await removeGrant(deps.services, ctx.params['grant'] ?? '') }),
    },
  ];
}
