import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dispatcher, ProxyAgent, request } from 'undici';
import { ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { runConnect, waitForOutput } from '../helpers/connect-process.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// `keyway connect` run as a user runs it, with the provider's login and consent completed over HTTP
// by the test, ending in a stored grant that the running proxy injects.

describe('keyway connect', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let client: ProxyAgent;
  const seenTokens: string[] = [];

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
      config: {
        providers: {
          testauth: {
            authorize_url: auth.authUrl,
            token_url: auth.tokenUrl,
            revoke_url: auth.revokeUrl,
            device_authorization_url: auth.deviceUrl,
            scopes: ['openid', 'offline_access', 'api'],
            domains: ['api.example.test'],
            client_id: CLIENT_ID,
            client_secret: 'env:TEST_CLIENT_SECRET',
          },
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

  async function callThrough(grant: string) {
    // Until the running proxy has picked up a grant the connect process just stored, the host is
    // tunnelled blind and the client (trusting keyway's CA only) refuses the real certificate.
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: client, headers: { 'x-keyway-grant': grant } });
    } catch (err) {
      return { status: 0, body: String((err as Error).message) };
    }
    const body = await res.body.text();
    return { status: res.statusCode, body };
  }

  async function eventuallyStatus(grant: string, status: number) {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const result = await callThrough(grant);
      if (result.status === status || Date.now() > deadline) return result;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('runs the authorization code flow with PKCE on a loopback redirect and stores a grant that injects', async () => {
    const running = runConnect(proxy, ['testauth', '--grant', 'conn', '--no-browser', '--json']);
    const [url] = await waitForOutput(running, /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+(?=\n)/);
    const consent = new URL(url);
    expect(consent.searchParams.get('code_challenge_method')).toBe('S256');
    expect(consent.searchParams.get('state')).toBeTruthy();
    const redirect = new URL(await auth.completeAuthorization(url));
    expect(redirect.hostname).toBe('127.0.0.1');

    // A callback with another state is refused and the flow keeps waiting for the real one.
    const forged = new URL(redirect);
    forged.searchParams.set('state', 'forged');
    expect((await fetch(forged)).status).toBe(400);
    expect((await fetch(redirect)).status).toBe(200);

    expect(await running.exit).toBe(0);
    const result = JSON.parse(running.stdout());
    expect(result).toMatchObject({ grant: 'conn', provider: 'testauth', refresh_token: 'stored' });
    const call = await eventuallyStatus('conn', 200);
    expect(call.status, call.body).toBe(200);
    expect(seenTokens.at(-1)).toMatch(/.{20,}/);
    const tokenText = seenTokens.at(-1)!;
    expect(running.stdout() + running.stderr()).not.toContain(tokenText);
    // The wallet knows whose account it is, from the OpenID Connect id_token (its `sub` here).
    const shown = JSON.parse((await proxy.cli(['grants', 'show', 'conn', '--json'])).stdout);
    expect(shown.account).toBe(ACCOUNT_ID);
  });

  it('runs the device flow and stores a grant that injects', async () => {
    const running = runConnect(proxy, ['testauth', '--device', '--grant', 'dev', '--json']);
    const [, userCode] = await waitForOutput(running, /enter the code: (\S+)\n/);
    await auth.approveDevice(userCode!);
    expect(await running.exit).toBe(0);
    expect(JSON.parse(running.stdout())).toMatchObject({ grant: 'dev', refresh_token: 'stored' });
    const call = await eventuallyStatus('dev', 200);
    expect(call.status, call.body).toBe(200);
  });

  it('refreshes on demand and revokes at the provider, after which the grant stops injecting', async () => {
    const refreshed = await proxy.cli(['refresh', 'conn', '--json']);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect(JSON.parse(refreshed.stdout)).toMatchObject({ grant: 'conn', refreshed: true });
    expect((await eventuallyStatus('conn', 200)).status).toBe(200);
    const lastGood = seenTokens.at(-1)!;
    expect(await auth.introspect(lastGood)).toBe(true);

    const revoked = await proxy.cli(['revoke', 'conn', '--json']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ status: 'revoked', provider: 'revoked at the provider' });
    expect(await auth.introspect(lastGood)).toBe(false);

    const after = await eventuallyStatus('conn', 401);
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body).error.code).toBe('grant_needs_reconnect');
    const listed = JSON.parse((await proxy.cli(['grants', 'show', 'conn', '--json'])).stdout);
    expect(listed.status).toBe('revoked');
    // connect, refresh and revoke from the command line are each an admin line in the audit chain.
    const admin = proxy.auditLines().filter((l) => l['decision'] === 'admin' && l['grant'] === 'conn' && l['client'] === 'cli');
    expect(admin.map((l) => l['action'])).toEqual(['oauth.connect', 'grants.refresh', 'grants.revoke']);
  });

  it('prints a consent URL with PKCE for a flow run elsewhere', async () => {
    const result = await proxy.cli([
      'oauth',
      'setup',
      '--provider',
      'testauth',
      '--auth-url',
      auth.authUrl,
      '--client-id',
      CLIENT_ID,
      '--redirect-uri',
      'http://127.0.0.1:8765/cb',
      '--scope',
      'openid',
      '--scope',
      'api',
      '--state',
      'xyz',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout);
    const url = new URL(out.url);
    expect(url.searchParams.get('state')).toBe('xyz');
    expect(url.searchParams.get('scope')).toBe('openid api');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(out.code_verifier).toMatch(/^[\w-]{43}$/);
  });

  it('provisions a grant from a preset name with `secrets set`', async () => {
    const result = await proxy.cli(
      ['secrets', 'set', 'SPOTIFY_OAUTH', '--stdin', '--json'],
      JSON.stringify({ client_id: 'c', client_secret: 's', refresh_token: 'r' }),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ grant: 'spotify', created: true });
    const shown = JSON.parse((await proxy.cli(['grants', 'show', 'spotify', '--json'])).stdout);
    expect(shown).toMatchObject({ type: 'oauth2', provider: 'spotify', status: 'active' });
    expect(shown.domains).toContain('api.spotify.com');
    expect(JSON.stringify(shown)).not.toContain('"r"');
  });

  let rcbotUrl = '';

  /** Runs the code flow to the end for `args`; returns the consent URL's scope. */
  async function connectThrough(args: string[]): Promise<{ scope: string | null; code: number | null; stdout: string; stderr: string }> {
    const running = runConnect(proxy, [...args, '--no-browser', '--json']);
    const [url] = await waitForOutput(running, /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+(?=\n)/);
    const redirect = await auth.completeAuthorization(url!);
    expect((await fetch(redirect)).status).toBe(200);
    const code = await running.exit;
    return { scope: new URL(url!).searchParams.get('scope'), code, stdout: running.stdout(), stderr: running.stderr() };
  }

  it('connect on an existing grant asks for the scopes it had plus the new ones, and keeps its id, labels, agents and leases', async () => {
    const first = await connectThrough(['testauth', '--grant', 'rc', '--scopes', 'openid,offline_access']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.scope).toBe('openid offline_access');
    // What the provider granted (it may grant less than was asked): the scopes a reconnect keeps.
    const granted = JSON.parse(first.stdout).scopes as string[];
    expect(granted).toContain('openid');
    expect((await proxy.cli(['grants', 'set', 'rc', '--label', 'team=ops'])).code).toBe(0);
    const added = await proxy.cli(['agents', 'add', 'rcbot', '--grants', 'rc', '--lease-ttl', '1h', '--json']);
    expect(added.code, added.stderr).toBe(0);
    rcbotUrl = JSON.parse(added.stdout).proxy_url;
    expect((await proxy.cli(['agents', 'lease', 'rcbot', 'rc', '--ttl', '30m'])).code).toBe(0);
    const before = JSON.parse((await proxy.cli(['grants', 'show', 'rc', '--json'])).stdout);

    const again = await connectThrough(['testauth', '--grant', 'rc', '--scopes', 'api']);
    expect(again.code, again.stderr).toBe(0);
    // Asked for the union: a re-consent for one scope never drops another.
    const union = [...new Set([...granted, 'api'])].sort();
    expect(again.scope!.split(' ').sort()).toEqual(union);
    expect(JSON.parse(again.stdout).scopes.sort()).toEqual(union);
    const after = JSON.parse((await proxy.cli(['grants', 'show', 'rc', '--json'])).stdout);
    expect(after).toMatchObject({ id: 'rc', labels: { team: 'ops' }, domains: before.domains });
    expect(after.scopes.sort()).toEqual(union);
    const agents = JSON.parse((await proxy.cli(['agents', 'list', '--json'])).stdout) as Array<{
      id: string;
      grants: string[];
      access: Array<{ grant: string; lease: string }>;
    }>;
    const bot = agents.find((a) => a.id === 'rcbot')!;
    expect(bot.grants).toEqual(['rc']);
    expect(bot.access.find((a) => a.grant === 'rc')?.lease).toBe('active');
  });

  it('a re-consent the provider refuses leaves the grant and its tokens as they were', async () => {
    // The suite's proxy has an agent now (the test before): calls go as that agent.
    const asBot = new ProxyAgent({ uri: rcbotUrl, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    const viaBot = async () => {
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: asBot });
      await res.body.text();
      return res.statusCode;
    };
    expect(await viaBot()).toBe(200);
    const tokenBefore = seenTokens.at(-1);
    const running = runConnect(proxy, ['testauth', '--grant', 'rc', '--scopes', 'api', '--no-browser']);
    const [url] = await waitForOutput(running, /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+(?=\n)/);
    const consent = new URL(url!);
    const refused = new URL(consent.searchParams.get('redirect_uri')!);
    refused.searchParams.set('error', 'access_denied');
    refused.searchParams.set('state', consent.searchParams.get('state')!);
    await fetch(refused);
    expect(await running.exit).not.toBe(0);
    expect(running.stderr()).toContain('the provider refused the authorization (access_denied)');
    expect(await viaBot()).toBe(200);
    expect(seenTokens.at(-1)).toBe(tokenBefore);
    await asBot.close();
    const shown = JSON.parse((await proxy.cli(['grants', 'show', 'rc', '--json'])).stdout);
    expect(shown).toMatchObject({ status: 'active', labels: { team: 'ops' } });
  });
});
