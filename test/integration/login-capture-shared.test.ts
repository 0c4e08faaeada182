import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

// Two keyways on one store (a second process of the same home, as workers or a restart leave it):
// a login captured through one resolves through the other, and a refresh token used through both
// at once goes to the provider once, whose answer both clients get.

const LOGIN_HOST = 'login.example.test';
let auth: AuthServer;
let api: TestUpstream;
let first: TestProxy;
let second: TestProxy;

function through(proxy: TestProxy): client.CustomFetch {
  const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  return ((input: string, init: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as client.CustomFetch;
}

beforeAll(async () => {
  auth = await startAuthServer({ tls: { hostname: LOGIN_HOST } });
  api = await startUpstream({ authorize: async (a) => a?.startsWith('Bearer ') === true && auth.introspect(a.slice(7)) });
  const config = {
    proxy: { hosts: Object.fromEntries([...TEST_HOSTS, LOGIN_HOST].map((h) => [h, '127.0.0.1'])) },
    grants: { 'corp-login': { type: 'login_capture', domains: ['api.example.test'], capture: { endpoints: [{ host: LOGIN_HOST, path: '/token' }] } } },
  };
  first = await startProxy({ config });
  second = await startProxy({ config, home: first.home });
}, 60_000);

afterAll(async () => {
  await second?.stop();
  await first?.stop();
  await api?.close();
  await auth?.close();
});

describe('captured tokens shared through the store', () => {
  it('a login through one keyway resolves through the other, and one refresh serves both', async () => {
    const viaFirst = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: through(first) });
    const viaSecond = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: through(second) });
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(viaFirst, {
      redirect_uri: 'http://127.0.0.1:53682/callback',
      scope: 'openid offline_access api',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      prompt: 'consent',
    });
    const tokens = await client.authorizationCodeGrant(viaFirst, new URL(await auth.completeAuthorization(url.toString())), {
      pkceCodeVerifier: verifier,
      idTokenExpected: true,
    });
    const resource = new URL(`https://api.example.test:${api.port}/echo`);
    // The second keyway reads the store once it changes (a file watch): then the placeholder is its too.
    await waitForAsync(
      async () => ((await client.fetchProtectedResource(viaSecond, tokens.access_token, resource, 'GET')).status === 200 ? true : undefined),
      'the second keyway resolving',
    );

    const before = auth.tokenCalls['refresh_token'] ?? 0;
    const [a, b] = await Promise.all([client.refreshTokenGrant(viaFirst, tokens.refresh_token!), client.refreshTokenGrant(viaSecond, tokens.refresh_token!)]);
    expect(auth.tokenCalls['refresh_token']).toBe(before + 1);
    expect(a.access_token).toBe(b.access_token);
    expect(a.refresh_token).toBe(b.refresh_token);
    const line = await waitFor(
      () => [...first.auditLines(), ...second.auditLines()].find((l) => l['captured_again'] === true),
      'one of the two answered from the first refresh',
    );
    expect(line['status']).toBe(200);
    await waitForAsync(
      async () => ((await client.fetchProtectedResource(viaSecond, a.access_token, resource, 'GET')).status === 200 ? true : undefined),
      'the refreshed token through the second',
    );
    expect((await client.fetchProtectedResource(viaFirst, a.access_token, resource, 'GET')).status).toBe(200);
  });
});
