import * as client from 'openid-client';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Login capture where the login server speaks plain HTTP on loopback (a development server, the
// shape of the test helpers' own): keyway reads absolute-form requests itself, so it captures
// there as inside TLS, once the grant allows plain HTTP (allow_http), as any grant must. The grant
// names the one agent it belongs to (agent:).

let auth: AuthServer;
let api: TestUpstream;
let proxy: TestProxy;

beforeAll(async () => {
  auth = await startAuthServer();
  api = await startUpstream({ tls: 'plain', authorize: async (a) => a?.startsWith('Bearer ') === true && auth.introspect(a.slice(7)) });
  const port = new URL(auth.issuer).port;
  proxy = await startProxy({
    config: {
      grants: {
        'dev-login': {
          type: 'login_capture',
          domains: ['127.0.0.1'],
          allow_http: true,
          agent: 'dev',
          capture: { endpoints: [{ host: `127.0.0.1:${port}`, path: '/token' }] },
        },
      },
      agents: { dev: { key: 'env:DEV_KEY' }, other: { key: 'env:OTHER_KEY' } },
    },
    env: { DEV_KEY: 'dev-agent-key-1c2d', OTHER_KEY: 'other-agent-key-3e4f' },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await api?.close();
  await auth?.close();
});

function through(agent: string, key: string): client.CustomFetch {
  const dispatcher = new ProxyAgent({ uri: proxy.url.replace('http://', `http://${agent}:${key}@`) });
  return ((input: string, init: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as client.CustomFetch;
}

async function discover(fetchImpl: client.CustomFetch): Promise<client.Configuration> {
  return client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, {
    [client.customFetch]: fetchImpl,
    execute: [client.allowInsecureRequests],
  });
}

describe('login capture over plain HTTP on loopback', () => {
  it('captures a client-credentials login for the agent the grant names, and refuses the grant to another', async () => {
    const config = await discover(through('dev', 'dev-agent-key-1c2d'));
    const tokens = await client.clientCredentialsGrant(config, { scope: 'api' });
    expect(tokens.access_token).toMatch(/^kwcap_/);
    const resource = new URL(`http://127.0.0.1:${api.port}/echo`);
    expect((await client.fetchProtectedResource(config, tokens.access_token, resource, 'GET')).status).toBe(200);
    expect(auth.issuedTokens.has(api.seen.at(-1)!.headers.authorization!.slice(7))).toBe(true);
    // Another agent may not log in through it: the grant belongs to dev.
    const other = await through('other', 'other-agent-key-3e4f')(`${auth.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials&scope=api',
      redirect: 'manual',
    });
    expect(other.status).toBe(403);
    expect(await other.text()).not.toContain('access_token');
  });
});
