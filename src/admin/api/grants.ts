// Grants: the wallet. Never a secret value in any answer: listings say only whether one is set.
// Every write calls the operation the CLI calls (src/operations/), and the router audits it.

import { listGrants } from '../../credentials/grant-listing.ts';
import { ProxyError } from '../../errors/index.ts';
import { addGrant, removeGrant, showGrant, updateGrant } from '../../operations/grants.ts';
import { setSecret } from '../../operations/secrets.ts';
import { refreshGrant, revokeGrant, type TokenContext } from '../../operations/tokens.ts';
import type { AdminDeps } from '../deps.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import { AdminError, type Route } from '../router.ts';
import { GRANT_SCHEMA, INJECT_SCHEMA, LABELS_SCHEMA, SECRET_SCHEMA } from './grant-schemas.ts';
import { optionalBoolean, optionalInject, optionalString, optionalStrings, readBody, requiredString, secretField } from './json-input.ts';

const TAGS = ['grants'];
const grantAnswer = (description: string) => jsonResponse(description, { type: 'object', properties: { grant: GRANT_SCHEMA } });
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
        responses: { '200': jsonResponse('The grants', { type: 'object', properties: { grants: { type: 'array', items: GRANT_SCHEMA } } }) },
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
        requestBody: jsonBody({
          type: 'object',
          required: ['id', 'type', 'domains'],
          properties: {
            id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
            type: { type: 'string', enum: ['oauth2', 'client_credentials', 'api_key', 'bearer', 'basic'] },
            domains: { type: 'array', items: { type: 'string' } },
            inject: INJECT_SCHEMA,
            provider: { type: 'string' },
            allow_http: { type: 'boolean' },
            allow_range: { type: 'boolean' },
            labels: LABELS_SCHEMA,
            secret: SECRET_SCHEMA,
          },
        }),
        responses: {
          '201': grantAnswer('Added; `warnings` lists grants whose domains overlap'),
          ...BAD_BODY,
          '409': errorResponse('The id exists, in the store or the config'),
        },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['id', 'type', 'domains', 'inject', 'provider', 'allow_http', 'allow_range', 'labels', 'secret']);
        const id = requiredString(body, 'id');
        const { grant, warnings } = await addGrant(
          deps.services,
          {
            id,
            type: requiredString(body, 'type'),
            domains: optionalStrings(body, 'domains'),
            inject: optionalInject(body),
            provider: optionalString(body, 'provider'),
            allowHttp: optionalBoolean(body, 'allow_http'),
            allowRange: optionalBoolean(body, 'allow_range'),
            labels: body['labels'] ?? undefined,
            secret: secretField(body, false),
          },
          'api',
        );
        return { status: 201, body: { grant, warnings }, audit: { grant: id } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/grants/{grant}',
      doc: {
        operationId: 'grants.update',
        summary: 'Change domains, injection, labels or allow_range; the secret and tokens stay',
        tags: TAGS,
        requestBody: jsonBody({
          type: 'object',
          properties: {
            domains: { type: 'array', items: { type: 'string' } },
            inject: INJECT_SCHEMA,
            labels: LABELS_SCHEMA,
            allow_range: { type: 'boolean' },
          },
        }),
        responses: { '200': grantAnswer('Changed'), ...BAD_BODY, '404': NOT_FOUND, '409': errorResponse('The grant is defined in the config file') },
      },
      handle: async (ctx) => {
        const body = await readBody(ctx, ['domains', 'inject', 'labels', 'allow_range']);
        const change = {
          domains: optionalStrings(body, 'domains'),
          inject: optionalInject(body),
          labels: body['labels'] ?? undefined,
          allowRange: optionalBoolean(body, 'allow_range'),
        };
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
        requestBody: jsonBody({ type: 'object', required: ['secret'], properties: { secret: SECRET_SCHEMA } }),
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
        summary: "Refresh the access token now, in the running proxy's single flight",
        tags: TAGS,
        responses: {
          '200': jsonResponse('Refreshed: the new expiry, never the token'),
          '400': errorResponse('Only oauth2 and client_credentials grants refresh'),
          '404': NOT_FOUND,
          '409': errorResponse('The grant needs reconnecting (the provider refused its refresh token, or it was revoked)'),
          '502': errorResponse('The token endpoint failed or could not be reached'),
        },
      },
      handle: async (ctx) => {
        const id = ctx.params['grant'] ?? '';
        const result = await tokenAnswer(() => refreshGrant(tokenContext(), id));
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

/**
 * A refresh's failure as the operator should read it: the proxy's own codes, but never 401 (that
 * would read as "your admin token is wrong"): a grant that needs reconnecting is a 409.
 */
async function tokenAnswer<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    const status = err.code === 'grant_needs_reconnect' ? 409 : 502;
    throw new AdminError(status, err.code, err.message, err.hint);
  }
}
