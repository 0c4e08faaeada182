// Refresh now and revoke over the admin API, against a real authorization server (oidc-provider,
// rotating refresh tokens) and an upstream that checks every token by introspection. The API uses
// the running proxy's own token manager: its refreshes show in the proxy's metrics, and one that
// races proxied requests on an expired token makes one call to the token endpoint in all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminCall, type AdminClient } from '../helpers/admin-api.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { curl, waitFor } from '../helpers/clients.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { delta, parseMetrics } from '../helpers/metrics-text.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

describe('admin API: refresh and revoke an OAuth grant', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let clockAheadMs = 0;
  const secrets = new Set<string>([CLIENT_SECRET]);
  const answers: string[] = [];

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({ authorize: async (authorization) => auth.introspect(authorization?.replace(/^Bearer /, '') ?? '') });
    proxy = await startProxy({
      config: {
        oauth: { refresh_skew: '1s' },
        providers: {
          testauth: {
            token_url: auth.tokenUrl,
            authorize_url: auth.authUrl,
            revoke_url: auth.revokeUrl,
            client_id: CLIENT_ID,
            client_secret: 'env:TEST_CLIENT_SECRET',
          },
        },
      },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET },
      tokenClock: () => Date.now() + clockAheadMs,
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await auth?.close();
  });

  const call = async (method: string, path: string, body?: unknown): Promise<AdminCall> => {
    const res = await admin.call(method, path, body);
    answers.push(res.text);
    return res;
  };
  const through = async () => {
    const before = upstream.seen.length;
    const res = await curl(
      ['-o', '/dev/null', '-w', '%{http_code}', '-x', proxy.url, `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    answers.push(res.stderr);
    return { status: Number(res.stdout), reachedUpstream: upstream.seen.length > before };
  };
  const metrics = async () => parseMetrics((await admin.call('GET', '/metrics')).text);

  it('a grant created with tokens in its secret serves at once', async () => {
    const tokens = await auth.obtainTokens();
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token!);
    const created = await call('POST', '/api/grants', {
      id: 'oidc',
      type: 'oauth2',
      provider: 'testauth',
      domains: ['api.example.test'],
      secret: { refresh_token: tokens.refresh_token, access_token: tokens.access_token, expires_at: Date.now() + tokens.expires_in * 1000 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ grant: { id: 'oidc', secret: 'set', display_status: 'active' } });
    expect(await through()).toEqual({ status: 200, reachedUpstream: true });
  });

  it("refresh now goes through the running proxy's token manager and the new token serves", async () => {
    const before = await metrics();
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    const res = await call('POST', '/api/grants/oidc/refresh');
    expect(res.status).toBe(200);
    const body = res.body as { grant: { last_refreshed_at: string | null }; token_expires_at: string | null };
    expect(body.token_expires_at).not.toBeNull();
    expect(body.grant.last_refreshed_at).not.toBeNull();
    expect(auth.tokenCalls['refresh_token']).toBe(calls + 1);
    // Only the proxy's own manager reports to the proxy's metrics.
    expect(delta(before, await metrics(), 'keyway_token_refreshes_total', { grant: 'oidc' })).toBe(1);
    expect(await through()).toEqual({ status: 200, reachedUpstream: true });
  });

  it('a refresh asked for while proxied requests find the token expired: one call to the token endpoint, every request served', async () => {
    clockAheadMs = 2 * 3_600_000;
    auth.mode = 'slow';
    auth.slowMs = 800;
    try {
      const calls = auth.tokenCalls['refresh_token'] ?? 0;
      const [api, ...proxied] = await Promise.all([call('POST', '/api/grants/oidc/refresh'), through(), through(), through()]);
      expect(api?.status).toBe(200);
      for (const r of proxied) expect(r).toEqual({ status: 200, reachedUpstream: true });
      expect(auth.tokenCalls['refresh_token']).toBe(calls + 1);
    } finally {
      auth.mode = 'normal';
      clockAheadMs = 0;
    }
  });

  it('revoke ends the tokens at the provider and the next request is refused; refresh then says reconnect (409)', async () => {
    const res = await call('POST', '/api/grants/oidc/revoke');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'revoked', provider: 'revoked at the provider', grant: { display_status: 'revoked' } });
    expect(await through()).toEqual({ status: 401, reachedUpstream: false });
    const again = await call('POST', '/api/grants/oidc/refresh');
    expect(again.status).toBe(409);
    expect((again.body as { error: { code: string } }).error.code).toBe('grant_needs_reconnect');
  });

  it('no token or client secret in any answer, audit line or log', async () => {
    const refreshLines = () => proxy.auditLines().filter((l) => l['decision'] === 'admin' && l['action'] === 'grants.refresh');
    // Audit lines are appended in batches, a few ms after the answer.
    await waitFor(() => refreshLines().length >= 3, 3_000);
    const audit = proxy
      .auditLines()
      .map((l) => JSON.stringify(l))
      .join('\n');
    expect(refreshLines().map((l) => [l['grant'], l['status']])).toEqual([
      ['oidc', 200],
      ['oidc', 200],
      ['oidc', 409],
    ]);
    for (const secret of secrets) {
      expect(findLeak(answers.join('\n'), secret)).toBeUndefined();
      expect(findLeak(audit, secret)).toBeUndefined();
      expect(findLeak(proxy.logs.join(''), secret)).toBeUndefined();
    }
  });
});
