import { once } from 'node:events';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Canaries, closeWithSockets } from './capture-canaries.ts';
import { mintTestLeaf } from './test-leaf.ts';

// One loopback stand-in for the three coding agents' subscription logins, for the tests of
// `keyway connect AGENT --login | --import`: each agent's token endpoint (answers shaped as the agent
// reads them: /tmp/agents-facts.md of issue 62 and the agents' own code) and the API its access
// token goes to. Every token it issues is a canary; it takes only tokens it issued (a placeholder
// is refused: 401, invalid_grant), a rotating refresh token once, Google's again and again.

export const LOGINS = {
  'claude-code': { tokenHost: 'platform.claude.com', tokenPath: '/v1/oauth/token', api: 'api.anthropic.com', apiPath: '/api/oauth/profile' },
  codex: { tokenHost: 'auth.openai.com', tokenPath: '/oauth/token', api: 'chatgpt.com', apiPath: '/backend-api/wham/accounts/check' },
  'gemini-cli': { tokenHost: 'oauth2.googleapis.com', tokenPath: '/token', api: 'cloudcode-pa.googleapis.com', apiPath: '/v1internal:loadCodeAssist' },
} as const;
export type LoginAgent = keyof typeof LOGINS;
/** Hosts an agent's access token goes to besides its API: Gemini asks Google's userinfo for the account's email. */
export const MORE_API_HOSTS = ['www.googleapis.com'] as const;
export const LOGIN_HOSTS = [...new Set([...Object.values(LOGINS).flatMap((l) => [l.tokenHost, l.api]), ...MORE_API_HOSTS])];

export interface TokenRequest {
  host: string;
  grant_type: string;
  refresh_token?: string | undefined;
  subject_token?: string | undefined;
}

export interface LoginStandIn {
  port: number;
  canaries: Canaries;
  /** Tokens it issued and still takes, by kind. */
  issued: { access: Set<string>; refresh: Set<string>; id: Set<string> };
  /** Every refresh token it issued, used or not. */
  everRefresh: Set<string>;
  tokenRequests: TokenRequest[];
  apiCalls: Array<{ host: string; path: string; bearer: string | undefined; ok: boolean }>;
  /** What the token endpoint of `agent` answers a code with, issued as if it had (a login made before keyway). */
  issue(agent: LoginAgent): Record<string, unknown>;
  close(): Promise<void>;
}

export async function startLoginStandIn(): Promise<LoginStandIn> {
  const canaries = new Canaries();
  const issued = { access: new Set<string>(), refresh: new Set<string>(), id: new Set<string>() };
  const everRefresh = new Set<string>();
  const tokenRequests: TokenRequest[] = [];
  const apiCalls: LoginStandIn['apiCalls'] = [];

  /** A JWT-shaped token (Codex's access and ID tokens, Google's ID token): a canary as its signature. */
  const jwt = (claims: Record<string, unknown>): string => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from(canaries.make('sig')).toString('base64url')}`;
    canaries.values.push(token);
    return token;
  };
  const refreshToken = (value: string): string => {
    issued.refresh.add(value);
    everRefresh.add(value);
    return value;
  };

  const tokensFor = (host: string, grantType: string): Record<string, unknown> => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    if (host === 'auth.openai.com') {
      const access = jwt({ exp, aud: ['https://api.openai.com/v1'], 'https://api.openai.com/auth': { chatgpt_account_id: 'acct-1' } });
      const id = jwt({ exp, email: 'dev@example.test' });
      issued.access.add(access);
      issued.id.add(id);
      return { id_token: id, access_token: access, refresh_token: refreshToken(canaries.make('codexrefresh')) };
    }
    if (host === 'oauth2.googleapis.com') {
      const access = `ya29.${canaries.make('googleaccess')}`;
      issued.access.add(access);
      const answer: Record<string, unknown> = {
        access_token: access,
        expires_in: 3599,
        scope: 'https://www.googleapis.com/auth/cloud-platform openid',
        token_type: 'Bearer',
      };
      // Google's refresh token does not rotate: only the code's answer carries one.
      if (grantType === 'authorization_code') {
        answer['refresh_token'] = refreshToken(`1//${canaries.make('googlerefresh')}`);
        answer['id_token'] = jwt({ exp, iss: 'https://accounts.google.com', email: 'dev@example.test' });
      }
      return answer;
    }
    const access = `sk-ant-oat01-${canaries.make('claudeaccess')}`;
    issued.access.add(access);
    // Claude's answer names the account (claude keeps it): ids that look like credentials, which the grant passes.
    return {
      access_token: access,
      refresh_token: refreshToken(`sk-ant-ort01-${canaries.make('clauderefresh')}`),
      expires_in: 28_800,
      scope: 'user:inference user:profile',
      token_type: 'Bearer',
      account: { uuid: '2c7f3e1a-9b4d-4e8f-a1c2-5d6e7f8a9b0c', email_address: 'developer.account@example.test' },
      organization: { uuid: '8e9f0a1b-2c3d-4e5f-a6b7-c8d9e0f1a2b3', name: 'Example-Organization-Name' },
    };
  };

  const server = createServer(mintTestLeaf(LOGIN_HOSTS), (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const json = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const login = Object.values(LOGINS).find((l) => l.tokenHost === host);
      if (login !== undefined && req.method === 'POST' && req.url === login.tokenPath) {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = (req.headers['content-type'] ?? '').includes('json')
          ? (JSON.parse(text) as Record<string, string>)
          : Object.fromEntries(new URLSearchParams(text));
        const grantType = body['grant_type'] ?? '';
        tokenRequests.push({ host, grant_type: grantType, refresh_token: body['refresh_token'], subject_token: body['subject_token'] });
        if (grantType === 'authorization_code' && body['code'] === 'code-from-the-browser') return json(200, tokensFor(host, grantType));
        const refresh = body['refresh_token'] ?? '';
        if (grantType === 'refresh_token' && issued.refresh.has(refresh)) {
          if (host !== 'oauth2.googleapis.com') issued.refresh.delete(refresh);
          return json(200, tokensFor(host, grantType));
        }
        // Codex's exchange of its ID token for an API key: only a real ID token gets one.
        if (grantType.endsWith(':token-exchange') && issued.id.has(body['subject_token'] ?? '')) {
          return json(200, { access_token: `sk-proj-${canaries.make('codexapikey')}`, token_type: 'Bearer' });
        }
        return json(400, { error: 'invalid_grant' });
      }
      const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const ok = bearer !== undefined && issued.access.has(bearer);
      apiCalls.push({ host, path: req.url ?? '', bearer, ok });
      json(ok ? 200 : 401, ok ? { account: { uuid: 'u-1' } } : { error: 'invalid token' });
    });
  });
  const close = closeWithSockets(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    canaries,
    issued,
    everRefresh,
    tokenRequests,
    apiCalls,
    issue: (agent) => tokensFor(LOGINS[agent].tokenHost, 'authorization_code'),
    close,
  };
}
