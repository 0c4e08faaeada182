import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { curl } from '../helpers/clients.ts';
import { codeLogin } from '../helpers/oidc-login.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

// Login capture, end to end: an OAuth client we did not write (openid-client) logs in at a real
// authorization server (oidc-provider, over TLS at login.example.test) through keyway, and calls a
// resource server that checks each token at the provider (introspection). The client only ever
// holds placeholders; the resource server gets the real tokens; refreshes go through the
// placeholder refresh token and rotate; every real token is kept out of everything the agent and
// the operator see.

const LOGIN_HOST = 'login.example.test';
/** proxy.hosts: the test hosts and the login server, all on loopback. */
const LOGIN_HOSTS = Object.fromEntries([...TEST_HOSTS, LOGIN_HOST].map((h) => [h, '127.0.0.1']));
const GITHUB_STYLE_TOKEN = 'gho_realToken0123456789abcdefABCDEF012345';
/** An ID token the grant leaves out of its fields: the client verifies it itself. */
const OIDC_ID_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl';

let auth: AuthServer;
let api: TestUpstream;
let legacy: { port: number; close(): Promise<void> };
let proxy: TestProxy;
/** Every body the agent's client received, and every real token the provider issued. */
const received: string[] = [];

/** fetch as an agent pointed at keyway: through it, trusting its CA, recording what comes back. */
function agentFetch(target: TestProxy, credentials?: string): typeof fetch {
  const uri = credentials === undefined ? target.url : target.url.replace('http://', `http://${credentials}@`);
  const dispatcher = new ProxyAgent({ uri, requestTls: { ca: readFileSync(target.caPath, 'utf8') } });
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await undiciFetch(input as string, { ...(init as object), dispatcher });
    const text = await response.clone().text();
    received.push(text);
    return response;
  }) as unknown as typeof fetch;
}

async function discover(fetchImpl: typeof fetch): Promise<client.Configuration> {
  return client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: fetchImpl as client.CustomFetch });
}

/** A placeholder's shape: keyway's opaque mark, or a JWT whose header starts with kwc. */
function isPlaceholder(value: unknown): boolean {
  return typeof value === 'string' && (/^kwcap_[A-Za-z0-9]{26,}$/.test(value) || value.startsWith('eyJrd2Mi'));
}

beforeAll(async () => {
  auth = await startAuthServer({ tls: { hostname: LOGIN_HOST } });
  api = await startUpstream({
    authorize: async (authorization) => authorization?.startsWith('Bearer ') === true && auth.introspect(authorization.slice('Bearer '.length)),
  });
  // A second login server on the capture host, with a token answer on a path nobody listed.
  const server = createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
    // Routed as many servers route: any case, a trailing slash.
    if (req.url?.toLowerCase().replace(/\/$/, '') === '/login/oauth/access_token') {
      // GitHub's way: a form answer, a gho_ token.
      res
        .writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' })
        .end(`access_token=${GITHUB_STYLE_TOKEN}&scope=repo&token_type=bearer`);
    } else if (req.url === '/slack/oauth.v2.access') {
      // Slack's way: the user's token nested beside the bot's.
      res
        .writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
        .end(JSON.stringify({ ok: true, access_token: 'xoxb-real-bot-0123456789', authed_user: { id: 'U1', access_token: 'xoxp-real-user-0123456789' } }));
    } else if (req.url === '/oidc/token') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: 'oidc-real-access-0123456789', id_token: OIDC_ID_TOKEN, token_type: 'Bearer' }));
    } else if (req.url === '/implicit') {
      res.writeHead(302, { location: 'https://app.example.test/cb#access_token=legacy-real-implicit-0123456789&token_type=bearer' }).end();
    } else if (req.url === '/oauth/legacy-token') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: 'legacy-real-access-token-0123456789', token_type: 'bearer' }));
    } else if (req.url === '/oauth/legacy-form') {
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' }).end('refresh_token=legacy-real-refresh-0123456789&x=1');
    } else if (req.url === '/oauth/latin1') {
      res.writeHead(200, { 'content-type': 'application/json; charset=iso-8859-1' }).end('{"id_token":"legacy-real-id-token-0123456789"}');
    } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  legacy = {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  proxy = await startProxy({
    config: {
      proxy: { hosts: LOGIN_HOSTS },
      grants: {
        'corp-login': {
          type: 'login_capture',
          domains: ['api.example.test'],
          capture: {
            endpoints: [
              { host: LOGIN_HOST, path: '/token' },
              { host: LOGIN_HOST, path: '/login/oauth/access_token' },
              { host: LOGIN_HOST, path: '/slack/oauth.v2.access' },
            ],
          },
        },
        other: { type: 'bearer', domains: ['other.example.test'], secret: 'env:OTHER_TOKEN' },
      },
    },
    env: { OTHER_TOKEN: 'other-grant-token-0123456789' },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await api?.close();
  await legacy?.close();
  await auth?.close();
});

/** The Authorization header the resource server saw last. */
function lastAuthorization(): string | undefined {
  const seen = api.seen[api.seen.length - 1];
  return seen?.headers.authorization;
}

describe('login capture with openid-client', () => {
  it('client credentials: the client holds a placeholder, the resource server gets the real token', async () => {
    const agent = agentFetch(proxy);
    const config = await discover(agent);
    const tokens = await client.clientCredentialsGrant(config, { scope: 'api' });
    expect(isPlaceholder(tokens.access_token)).toBe(true);
    expect(auth.issuedTokens.has(tokens.access_token)).toBe(false);
    expect(await auth.introspect(tokens.access_token)).toBe(false);
    const response = await client.fetchProtectedResource(config, tokens.access_token, new URL(`https://api.example.test:${api.port}/echo`), 'GET');
    expect(response.status).toBe(200);
    const sent = lastAuthorization()!.slice('Bearer '.length);
    expect(sent).not.toBe(tokens.access_token);
    expect(auth.issuedTokens.has(sent)).toBe(true);
    expect(await auth.introspect(sent)).toBe(true);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/token' && Array.isArray(l['captured'])), 'the capture audited');
    expect(line?.['captured']).toEqual(['access_token']);
    expect(line?.['grant']).toBe('corp-login');
  });

  it('authorization code with an ID token, then refreshes through the placeholder refresh token, rotating', async () => {
    const agent = agentFetch(proxy);
    const config = await discover(agent);
    // The person's browser, not the agent, logs in and consents: straight to the login server.
    const tokens = await codeLogin(config, auth);
    const nonce = tokens.nonce;
    for (const field of ['access_token', 'refresh_token', 'id_token'] as const) expect(isPlaceholder(tokens[field]), field).toBe(true);
    // The ID token placeholder keeps its claims: openid-client read and checked them.
    expect(tokens.claims()?.sub).toBe('user-1');
    expect(tokens.claims()?.nonce).toBe(nonce);
    expect(typeof tokens.claims()?.exp).toBe('number');

    const resource = new URL(`https://api.example.test:${api.port}/echo`);
    expect((await client.fetchProtectedResource(config, tokens.access_token, resource, 'GET')).status).toBe(200);
    const firstReal = lastAuthorization()!.slice('Bearer '.length);
    expect(auth.issuedTokens.has(firstReal)).toBe(true);

    const refreshesBefore = auth.tokenCalls['refresh_token'] ?? 0;
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(auth.tokenCalls['refresh_token']).toBe(refreshesBefore + 1);
    expect(isPlaceholder(refreshed.access_token)).toBe(true);
    expect(isPlaceholder(refreshed.refresh_token)).toBe(true);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect((await client.fetchProtectedResource(config, refreshed.access_token, resource, 'GET')).status).toBe(200);
    const secondReal = lastAuthorization()!.slice('Bearer '.length);
    expect(secondReal).not.toBe(firstReal);
    expect(await auth.introspect(secondReal)).toBe(true);

    // The old refresh token again (a second process of the agent that had it): the same answer, from
    // keyway. Sent upstream, the provider would take it for a stolen token and revoke the grant.
    const again = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(auth.tokenCalls['refresh_token']).toBe(refreshesBefore + 1);
    expect(again.refresh_token).toBe(refreshed.refresh_token);
    expect(again.access_token).toBe(refreshed.access_token);
    expect(await auth.introspect(secondReal)).toBe(true);
    await waitFor(() => proxy.auditLines().find((l) => l['captured_again'] === true), 'the answer given again audited');

    // Two refreshes at once with the newest: one goes up, both get its tokens.
    const [a, b] = await Promise.all([client.refreshTokenGrant(config, refreshed.refresh_token!), client.refreshTokenGrant(config, refreshed.refresh_token!)]);
    expect(auth.tokenCalls['refresh_token']).toBe(refreshesBefore + 2);
    expect(a.refresh_token).toBe(b.refresh_token);
    expect(a.access_token).toBe(b.access_token);
    expect((await client.fetchProtectedResource(config, a.access_token, resource, 'GET')).status).toBe(200);
  });

  it('device flow: the polled tokens are captured', async () => {
    const agent = agentFetch(proxy);
    const config = await discover(agent);
    const started = await client.initiateDeviceAuthorization(config, { scope: 'openid offline_access api' });
    await auth.approveDevice(started.user_code);
    const tokens = await client.pollDeviceAuthorizationGrant(config, started);
    expect(isPlaceholder(tokens.access_token)).toBe(true);
    expect(isPlaceholder(tokens.refresh_token)).toBe(true);
    const response = await client.fetchProtectedResource(config, tokens.access_token, new URL(`https://api.example.test:${api.port}/echo`), 'GET');
    expect(response.status).toBe(200);
  });
});

describe('refreshes cut short', () => {
  /** A refresh with this placeholder, posted as a client does; `signal` to hang up. */
  function refreshPost(refreshToken: string, signal?: AbortSignal): Promise<Response> {
    return agentFetch(proxy)(`${auth.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
      ...(signal ? { signal } : {}),
    });
  }

  it('a client that hangs up mid-refresh leaves the new tokens captured, and one that hangs up while waiting leaves no lock behind', async () => {
    const config = await discover(agentFetch(proxy));
    const tokens = await codeLogin(config, auth);
    const before = auth.tokenCalls['refresh_token'] ?? 0;
    auth.slowMs = 1_500;
    auth.mode = 'slow';
    try {
      // The first refresh goes up and its client hangs up while the provider takes its time; the
      // second waits on the token's lock and hangs up too.
      const first = new AbortController();
      const second = new AbortController();
      const a = refreshPost(tokens.refresh_token!, first.signal).catch(() => 'aborted');
      await new Promise((r) => setTimeout(r, 300));
      const b = refreshPost(tokens.refresh_token!, second.signal).catch(() => 'aborted');
      await new Promise((r) => setTimeout(r, 200));
      first.abort();
      second.abort();
      expect(await a).toBe('aborted');
      expect(await b).toBe('aborted');
    } finally {
      auth.mode = 'normal';
    }
    // The provider rotated the token for a client that had gone: keyway captured the answer all the
    // same, so the next refresh with the old placeholder gets those tokens (no second call), and no
    // lock is left held (this would wait 30 s on one).
    const again = await waitForAsync(async () => {
      const response = await refreshPost(tokens.refresh_token!);
      return response.status === 200 ? ((await response.json()) as { access_token: string; refresh_token: string }) : undefined;
    }, 'the refresh captured for the client that left');
    expect(auth.tokenCalls['refresh_token']).toBe(before + 1);
    expect(isPlaceholder(again.refresh_token)).toBe(true);
    const resource = new URL(`https://api.example.test:${api.port}/echo`);
    expect((await client.fetchProtectedResource(config, again.access_token, resource, 'GET')).status).toBe(200);
    const next = await client.refreshTokenGrant(config, again.refresh_token);
    expect(auth.tokenCalls['refresh_token']).toBe(before + 2);
    expect((await client.fetchProtectedResource(config, next.access_token, resource, 'GET')).status).toBe(200);
  });

  it('an endpoint spelled otherwise (case, a trailing slash) is the watched one; a redirect carrying a token is refused', async () => {
    const agent = agentFetch(proxy);
    const response = await agent(`https://${LOGIN_HOST}:${legacy.port}/Login/OAuth/Access_Token/`, { method: 'POST' });
    const form = new URLSearchParams(await response.text());
    expect(form.get('access_token')).toMatch(/^gho_kwcap_/);
    const redirect = await agent(`https://${LOGIN_HOST}:${legacy.port}/implicit`, { redirect: 'manual' });
    expect(redirect.status).toBe(502);
    expect(redirect.headers.get('x-keyway-error')).toBe('capture_unlisted');
    expect(redirect.headers.get('location')).toBeNull();
  });
});

describe('other answers and other places', () => {
  it('over HTTP/2: a token answer is captured and its placeholder resolves', async () => {
    const session = await h2ThroughProxy(proxy.port, `${LOGIN_HOST}:${auth.port}`, proxy.caPath);
    try {
      const answer = await h2Request(
        session,
        {
          ':method': 'POST',
          ':path': '/token',
          authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        'grant_type=client_credentials&scope=api',
      );
      expect(answer.headers[':status']).toBe(200);
      const token = (JSON.parse(answer.body.toString()) as { access_token: string }).access_token;
      expect(isPlaceholder(token)).toBe(true);
      const api2 = await h2ThroughProxy(proxy.port, `api.example.test:${api.port}`, proxy.caPath);
      try {
        const called = await h2Request(api2, { ':method': 'GET', ':path': '/echo', authorization: `Bearer ${token}` });
        expect(called.headers[':status']).toBe(200);
        expect(auth.issuedTokens.has(lastAuthorization()!.slice('Bearer '.length))).toBe(true);
      } finally {
        api2.close();
      }
    } finally {
      session.close();
    }
  });

  it('a form answer (GitHub’s) is captured with its vendor prefix kept, and resolves under any scheme and in a JSON body', async () => {
    const agent = agentFetch(proxy);
    const answer = await agent(`https://${LOGIN_HOST}:${legacy.port}/login/oauth/access_token`, { method: 'POST' });
    expect(answer.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(await answer.text());
    const placeholder = form.get('access_token')!;
    expect(placeholder).toMatch(/^gho_kwcap_[A-Za-z0-9]+$/);
    expect(placeholder.length).toBe(GITHUB_STYLE_TOKEN.length);
    expect(form.get('scope')).toBe('repo');

    const bodies: string[] = [];
    const recorder = await startUpstream({
      handler: (req, res, body) => {
        bodies.push(`${req.headers.authorization ?? ''} ${body?.toString('utf8') ?? ''}`);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return true;
      },
    });
    try {
      const sent = await agent(`https://api.example.test:${recorder.port}/graphql`, {
        method: 'POST',
        headers: { authorization: `token ${placeholder}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ viewer { login } }' }),
      });
      expect(sent.status).toBe(200);
      expect(bodies.at(-1)).toBe(`token ${GITHUB_STYLE_TOKEN} {"query":"{ viewer { login } }"}`);
      // Anywhere the grant does not resolve it (by default only Authorization: content the upstream
      // keeps and would hand back), refused: a JSON member named like a credential, a gist's
      // content, a custom header, the path, a form field, a query parameter.
      const before = bodies.length;
      const misplaced: Array<[string, RequestInit]> = [
        ['/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{}', token: placeholder }) }],
        ['/devices', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: placeholder }) }],
        [`/echo?access_token=${placeholder}`, {}],
        ['/gists', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ files: { 'a.txt': { content: placeholder } } }) }],
        [
          '/gists',
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: `{"token":"${placeholder.replace('k', '\\u006b')}","note":"${placeholder}"}`,
          },
        ],
        ['/echo', { headers: { 'x-note': placeholder } }],
        [`/repos/${placeholder}`, {}],
        ['/chat.postMessage', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `text=${placeholder}` }],
        ['/echo', { headers: { authorization: `Bearer x ${placeholder}` } }],
      ];
      for (const [path, init] of misplaced) {
        const refused = await agent(`https://api.example.test:${recorder.port}${path}`, init);
        expect(refused.status, path).toBe(403);
        expect(refused.headers.get('x-keyway-error'), path).toBe('placeholder_refused');
      }
      expect(bodies.length).toBe(before);
      // A Basic pair (git through gh's credential helper) has its password resolved too.
      const basic = Buffer.from(`x-access-token:${placeholder}`).toString('base64');
      expect((await agent(`https://api.example.test:${recorder.port}/info/refs`, { headers: { authorization: `Basic ${basic}` } })).status).toBe(200);
      expect(bodies.at(-1)).toBe(`Basic ${Buffer.from(`x-access-token:${GITHUB_STYLE_TOKEN}`).toString('base64')} `);
    } finally {
      await recorder.close();
    }
  });
});

describe('token fields nested, and another grant on the capture host', () => {
  it('a nested token field the grant does not capture is refused; named in capture.fields, it is captured', async () => {
    const refused = await agentFetch(proxy)(`https://${LOGIN_HOST}:${legacy.port}/slack/oauth.v2.access`, { method: 'POST' });
    expect(refused.status).toBe(502);
    const text = await refused.text();
    expect(text).toContain('authed_user.access_token');
    expect(text).not.toContain('real-');

    const slack = await startProxy({
      config: {
        proxy: { hosts: LOGIN_HOSTS },
        grants: {
          'slack-login': {
            type: 'login_capture',
            domains: ['api.example.test'],
            capture: { endpoints: [{ host: LOGIN_HOST, path: '/slack/oauth.v2.access' }], fields: ['access_token', 'authed_user.access_token'] },
          },
        },
      },
    });
    try {
      const answer = (await (await agentFetch(slack)(`https://${LOGIN_HOST}:${legacy.port}/slack/oauth.v2.access`, { method: 'POST' })).json()) as {
        access_token: string;
        authed_user: { id: string; access_token: string };
      };
      expect(answer.access_token).toMatch(/^xoxb-kwcap_/);
      expect(answer.authed_user.access_token).toMatch(/^xoxp-kwcap_/);
      expect(answer.authed_user.id).toBe('U1');
      const line = await waitFor(() => slack.auditLines().find((l) => Array.isArray(l['captured'])), 'the capture audited');
      expect(line['captured']).toEqual(['access_token', 'authed_user.access_token']);
    } finally {
      await slack.stop();
    }
  });

  it('a token the grant neither captures nor passes refuses the answer; listed in capture.pass, it reaches the agent as it came', async () => {
    const partial = await startProxy({
      config: {
        proxy: { hosts: LOGIN_HOSTS },
        grants: {
          'id-login': {
            type: 'login_capture',
            domains: ['api.example.test'],
            capture: { endpoints: [{ host: LOGIN_HOST, path: '/oidc/token' }], fields: ['access_token'] },
          },
          'id-pass': {
            type: 'login_capture',
            domains: ['api2.example.test'],
            capture: { endpoints: [{ host: LOGIN_HOST, path: '/oidc/token' }], fields: ['access_token'], pass: { fields: ['id_token'] } },
          },
        },
      },
    });
    try {
      // Default deny: an ID token the grant does not capture, and does not say is safe to pass, is refused.
      const refusedAnswer = await agentFetch(partial)(`https://${LOGIN_HOST}:${legacy.port}/oidc/token`, {
        method: 'POST',
        headers: { 'x-keyway-grant': 'id-login' },
      });
      expect(refusedAnswer.status).toBe(502);
      expect(refusedAnswer.headers.get('x-keyway-error')).toBe('capture_unlisted');
      const refusedText = await refusedAnswer.text();
      expect(refusedText).toContain('id_token');
      expect(refusedText).not.toContain(OIDC_ID_TOKEN);
      const answer = (await (
        await agentFetch(partial)(`https://${LOGIN_HOST}:${legacy.port}/oidc/token`, { method: 'POST', headers: { 'x-keyway-grant': 'id-pass' } })
      ).json()) as Record<string, string>;
      expect(answer['access_token']).toMatch(/^kwcap_/);
      expect(answer['id_token']).toBe(OIDC_ID_TOKEN);
    } finally {
      await partial.stop();
    }
  });

  it('a token answer on the capture host through another grant (X-Keyway-Grant) is refused, not handed over uncaptured', async () => {
    const both = await startProxy({
      config: {
        proxy: { hosts: LOGIN_HOSTS },
        grants: {
          'corp-login': { type: 'login_capture', domains: ['api.example.test'], capture: { endpoints: [{ host: LOGIN_HOST, path: '/oauth/legacy-token' }] } },
          'login-key': { type: 'bearer', domains: [LOGIN_HOST], secret: 'env:LOGIN_KEY' },
        },
      },
      env: { LOGIN_KEY: 'login-host-key-0123456789' },
    });
    try {
      const agent = agentFetch(both);
      const around = await agent(`https://${LOGIN_HOST}:${legacy.port}/oauth/legacy-token`, { method: 'POST', headers: { 'x-keyway-grant': 'login-key' } });
      expect(around.status).toBe(502);
      expect(around.headers.get('x-keyway-error')).toBe('capture_unlisted');
      expect(await around.text()).not.toContain('legacy-real');
      const through = await agent(`https://${LOGIN_HOST}:${legacy.port}/oauth/legacy-token`, { method: 'POST', headers: { 'x-keyway-grant': 'corp-login' } });
      expect(((await through.json()) as { access_token: string }).access_token).toMatch(/^kwcap_/);
    } finally {
      await both.stop();
    }
  });
});

describe('placeholders elsewhere, and token answers keyway was not told of', () => {
  async function placeholder(): Promise<string> {
    const config = await discover(agentFetch(proxy));
    return (await client.clientCredentialsGrant(config, { scope: 'api' })).access_token;
  }

  it('a placeholder sent to another grant’s host, to a host no grant covers, or over plain http is refused, never resolved', async () => {
    const token = await placeholder();
    const agent = agentFetch(proxy);
    const before = api.seen.length;
    for (const url of [
      `https://other.example.test:${api.port}/echo`,
      `https://tunnel.example.test:${api.port}/echo`,
      `http://plain.example.test:${api.port}/echo`,
    ]) {
      const response = await agent(url, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status, url).toBe(403);
      expect(response.headers.get('x-keyway-error'), url).toBe('placeholder_refused');
    }
    // In the query, too.
    const query = await agent(`https://other.example.test:${api.port}/echo?access_token=${token}`);
    expect(query.status).toBe(403);
    // In a second Authorization line (curl sends both; Node keeps only the first in req.headers),
    // and in a header's name: every header line the agent sent is read, name and value.
    for (const lines of [
      ['Authorization: Bearer harmless-0123456789', `Authorization: Bearer ${token}`],
      ['X-Note: harmless', `x-note: ${token}`],
      // HTTP/1.1 keeps a name's case; HTTP/2 sends names lower-cased, which no placeholder is.
      ['X-Note: harmless', `X-${token}: 1`],
    ]) {
      const twice = await curl(
        [
          '--http1.1',
          '-x',
          proxy.url,
          '--cacert',
          proxy.caPath,
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          ...lines.flatMap((l) => ['-H', l]),
          `https://other.example.test:${api.port}/echo`,
        ],
        {},
      );
      expect(twice.stdout, lines[1]).toBe('403');
    }
    expect(api.seen.length).toBe(before);
    const refused = await waitFor(() => {
      const lines = proxy.auditLines().filter((l) => l['code'] === 'placeholder_refused');
      return lines.length >= 4 ? lines : undefined;
    }, 'four refusals audited');
    expect(refused.every((l) => l['decision'] === 'deny')).toBe(true);
  });

  it('a token answer on a path of the capture host nobody listed is refused with nothing of the token', async () => {
    const agent = agentFetch(proxy);
    for (const [path, field] of [
      ['/oauth/legacy-token', 'access_token'],
      ['/oauth/legacy-form', 'refresh_token'],
      ['/oauth/latin1', 'id_token'],
    ] as const) {
      const response = await agent(`https://${LOGIN_HOST}:${legacy.port}${path}`, { method: 'POST' });
      const body = await response.text();
      expect(response.status, path).toBe(502);
      // Latin-1 is a charset keyway does not read: unreadable, refused all the same.
      expect(response.headers.get('x-keyway-error')).toBe(path === '/oauth/latin1' ? 'capture_unreadable' : 'capture_unlisted');
      expect(body).not.toContain('legacy-real');
      expect(body).toContain(path === '/oauth/latin1' ? 'iso-8859-1' : field);
    }
    // An answer with no token in it passes.
    const plain = await agent(`https://${LOGIN_HOST}:${legacy.port}/status`);
    expect(plain.status).toBe(200);
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => String(l['code']).startsWith('capture_un') && String(l['path']).startsWith('/oauth/'));
      return found.length >= 3 ? found : undefined;
    }, 'three capture_unlisted lines');
    expect(lines.length).toBe(3);
    expect(lines.every((l) => typeof l['message'] === 'string' && !String(l['message']).includes('legacy-real'))).toBe(true);
  });
});
