import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { readFileSync } from 'node:fs';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Refresh against a real authorization server: tokens are opaque and the upstream checks each one
// by introspection, so a stale or revoked token really fails.

describe('OAuth2 refresh', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let client: ProxyAgent;
  const sent: string[] = [];

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({
      authorize: async (header) => {
        const token = header?.replace(/^Bearer /, '') ?? '';
        sent.push(token);
        return token !== '' && auth.introspect(token);
      },
    });
    proxy = await startProxy({
      config: {
        providers: {
          testauth: { token_url: auth.tokenUrl, authorize_url: auth.authUrl, revoke_url: auth.revokeUrl, client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET' },
        },
      },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET },
    });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
    await auth?.close();
  });
  beforeEach(() => {
    auth.mode = 'normal';
  });

  async function addGrant(id: string, material: Record<string, unknown>): Promise<void> {
    const add = await proxy.cli(['grants', 'add', id, '--type', 'oauth2', '--domains', 'api.example.test', '--provider', 'testauth']);
    expect(add.code, add.stderr).toBe(0);
    const set = await proxy.cli(['secrets', 'set', id, '--stdin'], JSON.stringify(material));
    expect(set.code, set.stderr).toBe(0);
  }

  it('refreshes an expired access token once, then serves with the new one', async () => {
    const tokens = await auth.obtainTokens();
    expect(tokens.refresh_token).toBeTruthy();
    await addGrant('expired', { refreshToken: tokens.refresh_token, accessToken: 'long-gone', expiresAt: Date.now() - 1000 });
    await new Promise((r) => setTimeout(r, 600)); // the proxy picks up the CLI's write
    const before = auth.tokenCalls['refresh_token'] ?? 0;
    const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: client, headers: { 'x-keyway-grant': 'expired' } });
    const body = await res.body.text();
    expect(res.statusCode, body).toBe(200);
    expect(auth.tokenCalls['refresh_token']).toBe(before + 1);
    expect(sent).not.toContain('long-gone');
  });
});
