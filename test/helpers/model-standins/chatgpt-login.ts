// What a ChatGPT login (Codex's "Sign in with ChatGPT") holds, as the stand-ins issue it: an ID token
// and an access token that are JWTs carrying the account's claims under `https://api.openai.com/auth`,
// and the credential file Codex keeps them in ($CODEX_HOME/auth.json).
import { fakeJwt } from './jwt.ts';

export const CHATGPT_ACCOUNT_ID = 'acc-standin-0001';
const AUTH_CLAIMS = { chatgpt_plan_type: 'pro', chatgpt_account_id: CHATGPT_ACCOUNT_ID, chatgpt_user_id: 'user-standin-0001' };

export function chatgptAccessToken(ttlSeconds: number, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  return fakeJwt({
    iss: 'https://auth.openai.com',
    aud: ['https://api.openai.com/v1'],
    sub: 'auth0|standin',
    iat,
    exp: iat + ttlSeconds,
    'https://api.openai.com/auth': AUTH_CLAIMS,
    'https://api.openai.com/profile': { email: 'agent@example.test', email_verified: true },
  });
}

export function chatgptIdToken(clientId: string, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  return fakeJwt({
    iss: 'https://auth.openai.com',
    aud: [clientId],
    sub: 'auth0|standin',
    email: 'agent@example.test',
    email_verified: true,
    iat,
    exp: iat + 3600,
    'https://api.openai.com/auth': AUTH_CLAIMS,
  });
}

/** Codex's auth.json for a ChatGPT login whose access token expired `agoSeconds` ago. */
export function codexAuthFile(tokens: { refreshToken: string; clientId: string; agoSeconds?: number }): string {
  const ago = tokens.agoSeconds ?? 3600;
  const then = Date.now() - ago * 1000 - 3600 * 1000;
  return `${JSON.stringify(
    {
      auth_mode: 'chatgpt',
      OPENAI_API_KEY: null,
      tokens: {
        id_token: chatgptIdToken(tokens.clientId, then),
        access_token: chatgptAccessToken(3600, then),
        refresh_token: tokens.refreshToken,
        account_id: CHATGPT_ACCOUNT_ID,
      },
      last_refresh: new Date(then).toISOString(),
    },
    null,
    2,
  )}\n`;
}
