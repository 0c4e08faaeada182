// The dashboard's sign-in: the admin token typed once, exchanged for a session cookie (session.ts).
// POST is open (it is how a browser gets in); its wrong tries are bounded per client address.

import type { TokenCheck } from '../auth.ts';
import { errorResponse, jsonBody, jsonResponse } from '../openapi.ts';
import type { Route } from '../router.ts';
import { AdminError } from '../../errors/index.ts';
import { clearedSessionCookie, csrfMatches, sessionCookie, sessionIdOf, type SessionStore } from '../session.ts';
import type { SignInLimiter } from '../sign-in-limit.ts';

const TAGS = ['session'];

export interface SessionDeps {
  sessions: SessionStore;
  isToken: TokenCheck;
  limiter: SignInLimiter;
  /**
   * Where the token is, for the sign-in page's help (issue 48: it named ~/.keyway, not the real
   * home): the file, or that keyway was given it in its environment. Only on a loopback listener.
   */
  tokenWhere?: { file: string } | { environment: true } | undefined;
}

const SESSION_SCHEMA = {
  type: 'object',
  properties: {
    signed_in: { type: 'boolean' },
    token_file: { type: 'string', description: 'Signed out, on a loopback listener: where the admin token is (data/admin.token under the home)' },
    token_from_environment: { type: 'boolean', description: 'Signed out, on a loopback listener: keyway was given the token in KEYWAY_ADMIN_TOKEN(_FILE)' },
    csrf: { type: 'string', description: 'Sign-in only: send it as X-Keyway-CSRF on every call made with the session cookie' },
    idle_expires_at: { type: 'string' },
    expires_at: { type: 'string' },
  },
};

export function sessionRoutes({ sessions, isToken, limiter, tokenWhere }: SessionDeps): Route[] {
  const where = tokenWhere === undefined ? {} : 'file' in tokenWhere ? { token_file: tokenWhere.file } : { token_from_environment: true };
  return [
    {
      method: 'POST',
      path: '/api/session',
      open: true,
      doc: {
        operationId: 'session.create',
        summary: 'Sign in to the dashboard with the admin token: sets an HttpOnly, SameSite=Strict session cookie',
        tags: TAGS,
        requestBody: jsonBody({ type: 'object', required: ['token'], properties: { token: { type: 'string' } } }),
        responses: {
          '200': jsonResponse('Signed in; the cookie is set and `csrf` is the token for writes', SESSION_SCHEMA),
          '400': errorResponse('No token in the body'),
          '401': errorResponse('Not the admin token'),
          '413': errorResponse('The body is too large'),
          '415': errorResponse('The body is not application/json'),
          '429': errorResponse('Too many wrong tries from this address; Retry-After says when to try again'),
        },
      },
      handle: async (ctx) => {
        const wait = limiter.retryAfter(ctx.client);
        if (wait > 0) {
          ctx.res.setHeader('retry-after', String(wait));
          throw new AdminError('sign_in_limited', `too many wrong tokens from this address; try again in ${wait} s`);
        }
        const { token } = await ctx.body();
        if (typeof token !== 'string' || token.trim() === '') throw new AdminError('bad_request', 'send {"token": "<data/admin.token>"}');
        if (!isToken(token.trim())) {
          limiter.failed(ctx.client);
          throw new AdminError(
            'admin_auth_failed',
            'that is not the admin token',
            'the token is in data/admin.token under the keyway home, or the one KEYWAY_ADMIN_TOKEN or KEYWAY_ADMIN_TOKEN_FILE gave keyway',
          );
        }
        const session = sessions.create();
        return {
          status: 200,
          body: { signed_in: true, csrf: session.csrf, ...sessions.expiry(session) },
          headers: { 'set-cookie': sessionCookie(session.id, sessions.maxAgeSeconds()) },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/session',
      // Open: the page asks on load whether its cookie and stored CSRF token still make a session,
      // and "no" is an answer (200, signed_in false), not an error. It never gives the CSRF token
      // out: the cookie alone (which other ports of this host are sent too) must not lead to it.
      open: true,
      doc: {
        operationId: 'session.show',
        summary: 'Whether this request’s session cookie and X-Keyway-CSRF make a live dashboard session, and when it ends',
        tags: TAGS,
        responses: { '200': jsonResponse('The session', SESSION_SCHEMA) },
      },
      handle: (ctx) => {
        const id = sessionIdOf(ctx.req);
        const session = id === undefined ? undefined : sessions.touch(id);
        if (!session || !csrfMatches(ctx.req, session)) return { status: 200, body: { signed_in: false, ...where } };
        return { status: 200, body: { signed_in: true, ...sessions.expiry(session) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/session',
      doc: {
        operationId: 'session.delete',
        summary: 'Sign out: the session ends on the server and its cookie is cleared',
        tags: TAGS,
        responses: { '200': jsonResponse('Signed out') },
      },
      handle: (ctx) => {
        const id = sessionIdOf(ctx.req);
        if (id !== undefined) sessions.destroy(id);
        return { status: 200, body: { signed_out: true }, headers: { 'set-cookie': clearedSessionCookie() } };
      },
    },
  ];
}
