// OAuth through the admin listener: start an authorization-code flow whose redirect comes back to
// this listener's own /oauth/callback, and the device flow. Both run the same plan and store the
// grant the same way as `keyway connect` (src/oauth/connect-plan.ts); no answer carries a token.

import type { TokenSet } from '../../credentials/issuing/token-endpoint.ts';
import { AdminError, KeywayError } from '../../errors/index.ts';
import { beginAuthorization, exchangeCode, planConnect, storeConnection, type ConnectRequest } from '../../oauth/connect-plan.ts';
import { existingOAuthGrant } from '../../oauth/existing-grant.ts';
import type { AdminDeps } from '../deps.ts';
import { DeviceFlows } from '../device-flows.ts';
import { PendingAuthorizations } from '../oauth-states.ts';
import { sendCallbackPage } from '../oauth-page.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import type { AdminContext, Route } from '../router.ts';

const TAGS = ['oauth'];
export const CALLBACK_PATH = '/oauth/callback';

const CONNECT_BODY = {
  type: 'object',
  required: ['provider'],
  properties: {
    provider: { type: 'string', description: 'A built-in preset or a provider from the config' },
    grant: { type: 'string', description: 'The grant that gets the tokens; default: the provider’s name' },
    scopes: { type: 'array', items: { type: 'string' } },
    domains: { type: 'array', items: { type: 'string' } },
    client_id: { type: 'string', description: 'Another OAuth client than providers.NAME.client_id' },
    client_secret: { type: 'string', writeOnly: true, description: 'That client’s secret (stored with the grant, never returned)' },
  },
  additionalProperties: false,
};

export function oauthRoutes(deps: AdminDeps): Route[] {
  const pending = new PendingAuthorizations();
  const devices = new DeviceFlows({
    store: deps.services.store,
    dispatcher: deps.oauth.dispatcher,
    tokenTimeoutMs: () => deps.oauth.config().oauth.token_timeout,
    audit: deps.adminAudit,
    closing: deps.closing,
  });
  const plan = async (ctx: AdminContext) =>
    planConnect(deps.oauth.config(), deps.oauth.env, { ...connectRequest(await ctx.body()), existing: existingOAuthGrant(deps.services.store) });

  return [
    {
      method: 'POST',
      path: '/api/oauth/connect',
      doc: {
        operationId: 'oauth.connect',
        summary: 'Start connecting a provider: the consent URL to open, redirecting back to this listener’s /oauth/callback',
        description:
          'Authorization code with PKCE (S256). The state in the URL is single-use and expires at state_expires_at; the callback stores the grant as `keyway connect` does.',
        tags: TAGS,
        requestBody: jsonBody(CONNECT_BODY),
        responses: {
          '200': jsonResponse('The consent URL', {
            type: 'object',
            properties: {
              consent_url: { type: 'string' },
              state_expires_at: { type: 'string' },
              redirect_uri: { type: 'string' },
              grant: { type: 'string' },
              provider: { type: 'string' },
            },
          }),
          '400': errorResponse('Missing or unknown provider, a bad grant id or domain, no OAuth client configured, or no authorization endpoint'),
          '409': errorResponse('The grant is defined in the config file'),
          '413': errorResponse('The body is over 64 KiB'),
          '415': errorResponse('The body is not application/json'),
        },
      },
      handle: async (ctx) => {
        const connect = await plan(ctx);
        // The Host the caller reached us by (already checked against the listener's own names): the
        // browser that opens the consent URL comes back the same way.
        const redirectUri = `http://${ctx.req.headers.host ?? ''}${CALLBACK_PATH}`;
        const started = beginAuthorization(connect, redirectUri);
        const expiresAt = pending.add(started.state, { plan: connect, verifier: started.verifier, redirectUri });
        return {
          status: 200,
          body: {
            consent_url: started.consentUrl,
            state_expires_at: new Date(expiresAt).toISOString(),
            redirect_uri: redirectUri,
            grant: connect.grantId,
            provider: connect.provider.slug,
          },
          audit: { grant: connect.grantId },
        };
      },
    },
    {
      method: 'GET',
      path: CALLBACK_PATH,
      open: true,
      audited: true,
      doc: {
        operationId: 'oauth.callback',
        summary: 'Where the provider sends the browser back: exchanges the code and stores the grant (a small HTML page)',
        description:
          'Open (the redirect carries no admin token): the single-use, short-lived state from POST /api/oauth/connect is what authenticates it. An unknown, used or expired state, or error=, stores nothing.',
        tags: TAGS,
        parameters: [
          { name: 'code', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'state', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'error', in: 'query', required: false, schema: { type: 'string' } },
        ],
        responses: {
          '200': { description: 'Connected', content: { 'text/html': { schema: { type: 'string' } } } },
          '400': { description: 'Unknown, used or expired state, or the provider refused', content: { 'text/html': { schema: { type: 'string' } } } },
          '500': { description: 'The store could not be written; nothing was stored', content: { 'text/html': { schema: { type: 'string' } } } },
          '502': { description: 'The provider’s token endpoint failed the exchange', content: { 'text/html': { schema: { type: 'string' } } } },
        },
      },
      handle: async (ctx) => {
        const page = (status: number, title: string, text: string, grant: string | null = null) => {
          sendCallbackPage(ctx.res, status, title, text);
          return { streamed: true as const, status, audit: { grant } };
        };
        const state = ctx.query.get('state') ?? '';
        const claim = state === '' ? ({ kind: 'unknown' } as const) : pending.claim(state);
        if (claim.kind === 'unknown')
          return page(
            400,
            'Not connected',
            'This sign-in was not started by this keyway, or it was forgotten. Nothing was stored; start the connection again.',
          );
        if (claim.kind === 'used')
          return page(400, 'Not connected', 'This sign-in link was already used. Nothing more was stored; start the connection again if needed.', claim.grant);
        if (claim.kind === 'expired')
          return page(400, 'Not connected', 'This sign-in took too long and expired. Nothing was stored; start the connection again.', claim.grant);
        const { plan: connect, verifier, redirectUri } = claim.pending;
        const error = ctx.query.get('error');
        const code = ctx.query.get('code');
        if (error !== null || !code) {
          // Only the error's code, cleaned: the provider's description is not shown (it could carry anything).
          const reason = (error ?? 'no code').replace(/[^\w.-]/g, '').slice(0, 64);
          return page(400, 'Not connected', `The provider did not grant access (${reason}). Nothing was stored.`, connect.grantId);
        }
        let tokens: TokenSet;
        try {
          tokens = await exchangeCode(connect, { verifier, redirectUri }, code, {
            dispatcher: deps.oauth.dispatcher,
            timeoutMs: deps.oauth.config().oauth.token_timeout,
          });
        } catch (err) {
          const why = err instanceof KeywayError ? err.message : 'the token endpoint could not be reached';
          return page(502, 'Not connected', `The provider’s token endpoint did not give tokens: ${why}. Nothing was stored.`, connect.grantId);
        }
        let result: Awaited<ReturnType<typeof storeConnection>>;
        try {
          result = await storeConnection(deps.services.store, connect, tokens);
        } catch (err) {
          const why = err instanceof KeywayError ? err.message : 'the store could not be written';
          return page(500, 'Not connected', `The tokens could not be stored: ${why}. Start the connection again.`, connect.grantId);
        }
        return page(
          200,
          'Connected',
          `${result.provider} is connected as grant ${result.grant} (${result.domains.join(', ')}; refresh token ${result.refresh_token}). You can close this tab.`,
          result.grant,
        );
      },
    },
    {
      method: 'POST',
      path: '/api/oauth/device',
      doc: {
        operationId: 'oauth.device.start',
        summary: 'Start the device flow: the user code to enter at verification_uri; keyway polls and stores the grant',
        tags: TAGS,
        requestBody: jsonBody(CONNECT_BODY),
        responses: {
          '200': jsonResponse('The flow, pending'),
          '400': errorResponse('Missing or unknown provider, bad grant id or domain, no client, no device endpoint, or the provider refused'),
          '409': errorResponse('The grant is defined in the config file'),
          '413': errorResponse('The body is over 64 KiB'),
          '415': errorResponse('The body is not application/json'),
          '429': errorResponse('Too many device flows are waiting'),
          '503': errorResponse('keyway is stopping'),
        },
      },
      handle: async (ctx) => {
        const connect = await plan(ctx);
        const origin = { client: ctx.client, host: ctx.req.socket.localAddress ?? '', port: ctx.req.socket.localPort ?? 0 };
        const view = await devices.start(connect, origin);
        return { status: 200, body: view, audit: { grant: connect.grantId } };
      },
    },
    {
      method: 'GET',
      path: '/api/oauth/device/{flow}',
      doc: {
        operationId: 'oauth.device.status',
        summary: 'How a device flow is going: pending, connected or failed (with message)',
        tags: TAGS,
        responses: { '200': jsonResponse('The flow'), '404': errorResponse('No such flow (or it finished over 10 minutes ago)') },
      },
      handle: (ctx) => {
        const view = devices.get(ctx.params['flow'] ?? '');
        if (!view) throw new AdminError('not_found', 'no such device flow; it may have finished over 10 minutes ago');
        return { status: 200, body: view };
      },
    },
  ];
}

/** The body's fields, typed; anything else in it is refused (a misspelt field would silently be ignored). */
function connectRequest(body: Record<string, unknown>): ConnectRequest {
  const allowed = Object.keys(CONNECT_BODY.properties);
  for (const key of Object.keys(body)) if (!allowed.includes(key)) throw bad(`unknown field; expected any of ${allowed.join(', ')}`);
  const text = (key: string): string | undefined => {
    const value = body[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') throw bad(`${key}: expected a non-empty string`);
    return value;
  };
  const list = (key: string): string[] | undefined => {
    const value = body[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) throw bad(`${key}: expected an array of non-empty strings`);
    return value as string[];
  };
  return {
    provider: text('provider'),
    grant: text('grant'),
    scopes: list('scopes'),
    domains: list('domains'),
    clientId: text('client_id'),
    clientSecret: text('client_secret'),
  };
}

function bad(message: string): AdminError {
  return new AdminError('bad_request', message);
}
