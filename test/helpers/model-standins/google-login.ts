// What a Google login (Gemini CLI's "Login with Google") asks of Google besides the token endpoint:
// tokeninfo, which the CLI's auth library calls on a refreshed token to learn its scopes and expiry
// (a failure there and the CLI falls back to an interactive login, which headless it cannot do), and
// the account's userinfo, which it reads for the email it shows.
import { type Accepts, acceptsAccessToken } from './replies.ts';
import { bearerOf, type StandinHandler, sendJson } from './server.ts';

export const GOOGLE_SCOPES =
  'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile';

export function googleTokenInfoHandler(options: Accepts & { clientId: string; host?: string }): StandinHandler {
  const host = options.host ?? 'oauth2.googleapis.com';
  return (req, res) => {
    if (req.host !== host || req.path !== '/tokeninfo') return false;
    // The token comes as a bearer header, or as access_token in the query or form.
    const form = new URLSearchParams(req.body.toString('utf8'));
    const token = bearerOf(req) ?? req.query.get('access_token') ?? form.get('access_token') ?? undefined;
    if (!acceptsAccessToken(options, token)) return sendJson(res, 400, { error: 'invalid_token', error_description: 'Invalid Value' });
    const exp = Math.floor(Date.now() / 1000) + 3000;
    return sendJson(res, 200, {
      azp: options.clientId,
      aud: options.clientId,
      sub: '100000000000000000001',
      scope: GOOGLE_SCOPES,
      exp: String(exp),
      expires_in: '3000',
      email: 'agent@example.test',
      email_verified: 'true',
      access_type: 'offline',
    });
  };
}

export function googleUserInfoHandler(options: Accepts & { host?: string }): StandinHandler {
  const host = options.host ?? 'www.googleapis.com';
  return (req, res) => {
    if (req.host !== host || req.path !== '/oauth2/v2/userinfo') return false;
    if (!acceptsAccessToken(options, bearerOf(req)))
      return sendJson(res, 401, { error: { code: 401, message: 'Invalid Credentials', status: 'UNAUTHENTICATED' } });
    return sendJson(res, 200, { id: '100000000000000000001', email: 'agent@example.test', verified_email: true, name: 'Stand-in Account' });
  };
}
