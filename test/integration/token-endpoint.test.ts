import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestToken, TokenEndpointError, type TokenEndpoint } from '../../src/credentials/issuing/token-endpoint.ts';
import { buildConsentUrl } from '../../src/oauth/consent-url.ts';

// Provider quirks in the token request and response, against a scripted endpoint on loopback.

let server: Server;
let base: string;
const calls: Array<{ path: string; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls.push({ path: req.url ?? '', body });
      const answer: Record<string, object> = {
        '/token': { access_token: 'from-token-url', expires_in: 60 },
        '/refresh': { access_token: 'from-refresh-url', refresh_token: 'rotated', expires_in: 60 },
        '/slack': {
          ok: true,
          access_token: undefined as never,
          authed_user: { id: 'U1', access_token: 'xoxp-user', refresh_token: 'xoxe-user', expires_in: 43200, scope: 'chat:write,users:read' },
        },
        '/github-form': {},
        '/invalid': { error: 'invalid_grant', error_description: 'secret-ish detail' },
      };
      if (req.url === '/github-form') {
        res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' }).end('access_token=gho_form&scope=repo&token_type=bearer');
        return;
      }
      const status = req.url === '/invalid' ? 400 : 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer[req.url ?? ''] ?? { error: 'nope' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const endpoint = (tokenUrl: string, refreshUrl?: string): TokenEndpoint => ({
  tokenUrl,
  refreshUrl,
  clientId: 'c',
  clientSecret: 's',
  clientAuth: 'body',
  bodyFormat: 'form',
  extraParams: {},
});

describe('token endpoint quirks', () => {
  it('sends refresh_token grants to the refresh URL when the provider has one (Figma), others to the token URL', async () => {
    const refreshed = await requestToken(
      endpoint(`${base}/token`, `${base}/refresh`),
      { grant_type: 'refresh_token', refresh_token: 'r' },
      { timeoutMs: 2_000 },
    );
    expect(refreshed).toMatchObject({ accessToken: 'from-refresh-url', refreshToken: 'rotated' });
    const code = await requestToken(endpoint(`${base}/token`, `${base}/refresh`), { grant_type: 'authorization_code', code: 'x' }, { timeoutMs: 2_000 });
    expect(code.accessToken).toBe('from-token-url');
    expect(calls.map((c) => c.path)).toEqual(['/refresh', '/token']);
  });

  it("keeps the user's token from Slack's v2 answer (authed_user)", async () => {
    const tokens = await requestToken(endpoint(`${base}/slack`), { grant_type: 'authorization_code', code: 'x' }, { timeoutMs: 2_000 });
    expect(tokens).toMatchObject({ accessToken: 'xoxp-user', refreshToken: 'xoxe-user', scopes: ['chat:write', 'users:read'] });
  });

  it('reads a form-encoded answer (GitHub without Accept: application/json)', async () => {
    const tokens = await requestToken(endpoint(`${base}/github-form`), { grant_type: 'authorization_code', code: 'x' }, { timeoutMs: 2_000 });
    expect(tokens.accessToken).toBe('gho_form');
  });

  it('reports invalid_grant by its code only, never the provider free text', async () => {
    const err = await requestToken(endpoint(`${base}/invalid`), { grant_type: 'refresh_token', refresh_token: 'r' }, { timeoutMs: 2_000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TokenEndpointError);
    expect((err as TokenEndpointError).kind).toBe('invalid_grant');
    expect((err as Error).message).not.toContain('secret-ish');
  });

  it('joins scopes with the provider separator in the consent URL', () => {
    const url = (sep?: ' ' | ',') =>
      new URL(
        buildConsentUrl({
          authorizeUrl: 'https://auth.example.test/a',
          clientId: 'c',
          redirectUri: 'http://127.0.0.1:1/callback',
          scopes: ['a', 'b'],
          state: 's',
          codeChallenge: 'x',
          ...(sep ? { scopeSeparator: sep } : {}),
        }),
      );
    expect(url().searchParams.get('scope')).toBe('a b');
    expect(url(',').searchParams.get('scope')).toBe('a,b');
  });
});
