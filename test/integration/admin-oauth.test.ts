// Connecting a provider through the admin API against a real authorization server (oidc-provider):
// POST /api/oauth/connect, the consent followed over HTTP as a browser would, the provider's
// redirect to the admin listener's own /oauth/callback, the grant stored, and the next request
// through the proxy carrying the new token (checked by the upstream at the provider). Then what a
// hostile caller of the open callback can try, and the device flow end to end.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

interface Page {
  status: number;
  headers: Headers;
  text: string;
}

describe('admin API: OAuth connect through the admin callback, and the device flow', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let agent: ProxyAgent;
  const seenTokens: string[] = [];
  const answers: string[] = [];

  const call = async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await admin.call(method, path, body, headers);
    answers.push(res.text);
    return res;
  };
  const open = async (url: string): Promise<Page> => {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(slack(10_000)) });
    const page = { status: res.status, headers: res.headers, text: await res.text() };
    answers.push(page.text);
    return page;
  };
  const grantIds = async () => ((await call('GET', '/api/grants')).body as { grants: Array<{ id: string }> }).grants.map((g) => g.id);
  const through = async (grant: string) => {
    try {
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: agent, headers: { 'x-keyway-grant': grant } });
      return { status: res.statusCode, body: await res.body.text() };
    } catch (err) {
      return { status: 0, body: (err as Error).message };
    }
  };
  /** The proxy picks a stored grant up when it sees the store change: bounded wait for it. */
  const eventually = async (grant: string, status: number) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const r = await through(grant);
      if (r.status === status || Date.now() > deadline) return r;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const start = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/api/oauth/connect', body);
    expect(res.status, res.text).toBe(200);
    return res.body as { consent_url: string; state_expires_at: string; redirect_uri: string; grant: string };
  };

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({
      authorize: async (header) => {
        const token = header?.replace(/^Bearer /, '') ?? '';
        seenTokens.push(token);
        return token !== '' && auth.introspect(token);
      },
    });
    proxy = await startProxy({
      grants: [{ id: 'static', type: 'bearer', domains: ['other.example.test'], secret: CANARY }],
      config: {
        providers: {
          testauth: {
            authorize_url: auth.authUrl,
            token_url: auth.tokenUrl,
            device_authorization_url: auth.deviceUrl,
            scopes: ['openid', 'offline_access', 'api'],
            domains: ['api.example.test'],
            client_id: CLIENT_ID,
            client_secret: 'env:TEST_CLIENT_SECRET',
          },
          nodevice: { authorize_url: auth.authUrl, token_url: auth.tokenUrl, domains: ['api.example.test'], client_id: CLIENT_ID },
        },
      },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET },
    });
    admin = adminClient(proxy);
    agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    await upstream?.close();
    await auth?.close();
    // No answer, page or audit line carries the planted secret or a token the provider issued.
    const everything = [...answers, readFileSync(proxy.auditPath, 'utf8'), proxy.logs.join('')].join('\n');
    expect(findLeak(everything, CANARY)).toBeUndefined();
    expect(findLeak(everything, CLIENT_SECRET)).toBeUndefined();
    for (const token of new Set(seenTokens.filter((t) => t.length > 20))) expect(findLeak(everything, token)).toBeUndefined();
  });

  it('connects: consent URL with PKCE to the admin callback, grant stored, next proxied request injects the token', async () => {
    const started = await start({ provider: 'testauth', grant: 'conn' });
    const consent = new URL(started.consent_url);
    expect(consent.origin).toBe(auth.issuer);
    expect(consent.searchParams.get('code_challenge_method')).toBe('S256');
    expect(consent.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(consent.searchParams.get('state')).toMatch(/^[\w-]{22,}$/);
    expect(consent.searchParams.get('redirect_uri')).toBe(`${admin.base}/oauth/callback`);
    expect(started.redirect_uri).toBe(`${admin.base}/oauth/callback`);
    expect(Date.parse(started.state_expires_at)).toBeGreaterThan(Date.now());

    // The browser's part: login and consent at the provider, which redirects to the admin callback.
    const redirect = new URL(await auth.completeAuthorization(started.consent_url));
    expect(`${redirect.origin}${redirect.pathname}`).toBe(`${admin.base}/oauth/callback`);
    expect(await grantIds()).not.toContain('conn');

    const page = await open(redirect.toString());
    expect(page.status, page.text).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'sha256-[\w+/=]+'/);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.text).toContain('grant conn');
    expect(page.text).toContain('href="/#/grants"');
    expect(page.text).not.toMatch(/<script|src=|https?:\/\//);
    expect(page.text).not.toContain(redirect.searchParams.get('code')!);
    expect(page.text).not.toContain(redirect.searchParams.get('state')!);

    expect(await grantIds()).toContain('conn');
    const injected = await eventually('conn', 200);
    expect(injected.status, injected.body).toBe(200);
    const token = seenTokens.at(-1)!;
    expect(await auth.introspect(token)).toBe(true);
    expect(page.text).not.toContain(token);

    // The same redirect again (a replayed or leaked URL): refused, no second exchange, nothing stored.
    const exchanges = auth.tokenCalls['authorization_code'] ?? 0;
    const replay = await open(redirect.toString());
    expect(replay.status).toBe(400);
    expect(replay.text).toMatch(/already used/);
    expect(auth.tokenCalls['authorization_code'] ?? 0).toBe(exchanges);

    // Audited: the start and the callback, each naming the grant; neither line has the code or state.
    // The router writes a line once the answer is sent: wait (bounded) for the third.
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['decision'] === 'admin' && String(l['action']).startsWith('oauth.'));
      return found.length >= 3 ? found : undefined;
    }, 'three oauth audit lines');
    expect(lines.map((l) => [l['action'], l['grant'], l['status'], l['path']])).toEqual([
      ['oauth.connect', 'conn', 200, '/api/oauth/connect'],
      ['oauth.callback', 'conn', 200, '/oauth/callback'],
      ['oauth.callback', 'conn', 400, '/oauth/callback'],
    ]);
  });

  it('stores nothing for a callback with an unknown or missing state, or with error=', async () => {
    const before = await grantIds();
    const callback = `${admin.base}/oauth/callback`;
    const unknown = await open(`${callback}?state=forged-state-value&code=whatever`);
    expect(unknown.status).toBe(400);
    expect(unknown.text).toMatch(/not started by this keyway/);
    expect((await open(`${callback}?code=whatever`)).status).toBe(400);

    const started = await start({ provider: 'testauth', grant: 'denied' });
    const state = new URL(started.consent_url).searchParams.get('state')!;
    const refused = await open(`${callback}?state=${state}&error=access_denied&error_description=${encodeURIComponent('<script>alert(1)</script>')}`);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('(access_denied)');
    expect(refused.text).not.toContain('<script>alert');
    // error= ends the flow: its state cannot be used afterwards with a code.
    expect((await open(`${callback}?state=${state}&code=late`)).status).toBe(400);
    const hostile = await open(`${callback}?state=${encodeURIComponent('"><script>x</script>')}`);
    expect(hostile.text).not.toContain('<script>x');
    expect(await grantIds()).toEqual(before);
  });

  it('checks the connect body: provider, fields, types, media type, config grants, and never echoes a secret', async () => {
    const bad = async (body: unknown, status = 400) => {
      const res = await call('POST', '/api/oauth/connect', body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      return (res.body as { error: { code: string; message: string } }).error;
    };
    await bad({});
    await bad({ provider: 'no-such-provider' });
    await bad({ provider: 'testauth', grant: '../etc' });
    await bad({ provider: 'testauth', grant: 'UPPER' });
    await bad({ provider: 'testauth', domains: ['*'] });
    await bad({ provider: 'testauth', scopes: 'api' });
    expect((await bad({ provider: 'testauth', client_secret: CANARY, extra: CANARY })).message).not.toContain(CANARY);
    // A client secret given in the body is never echoed in the answer or the consent URL.
    const started = await start({ provider: 'testauth', grant: 'other', client_id: CLIENT_ID, client_secret: CANARY });
    expect(JSON.stringify(started)).not.toContain(CANARY);
    const form = await fetch(`${admin.base}/api/oauth/connect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'provider=testauth',
    });
    expect(form.status).toBe(415);
    const noToken = await fetch(`${admin.base}/api/oauth/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"provider":"testauth"}',
    });
    expect(noToken.status).toBe(401);
    const device = await call('POST', '/api/oauth/device', { provider: 'nodevice' });
    expect(device.status).toBe(400);
    expect((device.body as { error: { message: string } }).error.message).toMatch(/no device authorization endpoint/);
    expect((await call('GET', '/api/oauth/device/no-such-flow')).status).toBe(404);
  });

  it('runs the device flow in the background and reports it connected; the grant injects', async () => {
    const res = await call('POST', '/api/oauth/device', { provider: 'testauth', grant: 'dev' });
    expect(res.status, res.text).toBe(200);
    const flow = res.body as { flow: string; state: string; user_code: string; verification_uri: string; expires_at: string };
    expect(flow.state).toBe('pending');
    expect(flow.verification_uri).toContain(auth.issuer);
    expect((await call('GET', `/api/oauth/device/${flow.flow}`)).body).toMatchObject({ state: 'pending', grant: 'dev' });
    await auth.approveDevice(flow.user_code);
    const deadline = Date.now() + 20_000;
    let status: { state: string; connected?: { refresh_token: string } } = { state: 'pending' };
    while (status.state === 'pending' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await call('GET', `/api/oauth/device/${flow.flow}`)).body as typeof status;
    }
    expect(status).toMatchObject({ state: 'connected', connected: { grant: 'dev', refresh_token: 'stored' } });
    const injected = await eventually('dev', 200);
    expect(injected.status, injected.body).toBe(200);
    const actions = await waitFor(() => {
      // The operator's lines (the injected request's own line may land before or after them).
      const found = proxy.auditLines().filter((l) => l['grant'] === 'dev' && l['decision'] === 'admin');
      return found.length >= 2 ? found.map((l) => l['action']) : undefined;
    }, 'the device flow audit lines');
    expect(actions).toEqual(['oauth.device.start', 'oauth.device.connected']);
  });

  it('reports a device flow the person refused as failed, and stores nothing', async () => {
    const res = await call('POST', '/api/oauth/device', { provider: 'testauth', grant: 'refused' });
    expect(res.status, res.text).toBe(200);
    const flow = res.body as { flow: string; user_code: string };
    // The person says no at the provider's verification page.
    const code = await auth.provider.DeviceCode.findByUserCode(flow.user_code.replace(/[^a-z0-9]/gi, '').toUpperCase());
    Object.assign(code!, { error: 'access_denied', errorDescription: 'the user said no' });
    await code!.save();
    const deadline = Date.now() + 20_000;
    let status: { state: string; message?: string } = { state: 'pending' };
    while (status.state === 'pending' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await call('GET', `/api/oauth/device/${flow.flow}`)).body as typeof status;
    }
    expect(status).toMatchObject({ state: 'failed', message: 'the authorization was denied' });
    expect(await grantIds()).not.toContain('refused');
    const actions = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['grant'] === 'refused');
      return found.length >= 2 ? found.map((l) => [l['action'], l['message'] ?? null]) : undefined;
    }, 'the refused flow audit lines');
    expect(actions).toEqual([
      ['oauth.device.start', null],
      ['oauth.device.failed', 'the authorization was denied'],
    ]);
  });

  it('holds against a hostile caller on the same machine: wrong token, foreign Host, huge body, odd flow ids', async () => {
    const wrong = await fetch(`${admin.base}/api/oauth/device`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-the-token', 'content-type': 'application/json' },
      body: '{"provider":"testauth"}',
    });
    expect(wrong.status).toBe(401);
    // A rebinding page reaching the open callback under its own name is refused before anything runs.
    const foreign = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${admin.base}/oauth/callback?state=x&code=y`, { headers: { host: 'evil.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(foreign).toBe(403);
    const huge = await call('POST', '/api/oauth/connect', { provider: 'testauth', scopes: ['x'.repeat(70 * 1024)] });
    expect(huge.status).toBe(413);
    for (const id of ['..', '%2e%2e', '%2fetc', 'UPPER', `${'a'.repeat(300)}`]) {
      const res = await call('GET', `/api/oauth/device/${id}`);
      expect(res.status, id).toBe(404);
    }
  });
});
