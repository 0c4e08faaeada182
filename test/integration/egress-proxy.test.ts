// egress.proxy: keyway behind a company's proxy. squid plays it (a plain forward proxy that resolves
// test names to loopback itself), with and without Basic credentials; keyway sends every connection
// it makes through it by CONNECT: intercepted requests, blind tunnels, token endpoints, WebSocket
// upgrades. Hosts on no_proxy go direct; a proxy that is down, refuses keyway's credentials or
// refuses the CONNECT is a clear upstream_unreachable, and no credential reaches a log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { openTunnel } from '../helpers/raw-http.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { curl, rawConnect } from '../helpers/clients.ts';
import { startCorporateProxy, type CorporateProxy } from '../helpers/corporate-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';
import { cleanEnv, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SECRET = `${CANARY}-api-key`;
const PROXY_PASSWORD = `corp-${randomBytes(12).toString('hex')}`;

describe('egress.proxy: keyway behind a company proxy (squid)', () => {
  let corp: CorporateProxy;
  let upstream: TestUpstream;
  let auth: AuthServer;
  let proxy: TestProxy;
  const outputs: string[] = [];

  const viaKeyway = async (url: string, extra: string[] = [], ca = proxy.caPath) => {
    const r = await curl(['-sS', '--cacert', ca, '-x', proxy.url, ...extra, '-w', '\n%{http_connect} %{http_code}', url], cleanEnv());
    outputs.push(r.stdout, r.stderr);
    return r.stdout;
  };

  beforeAll(async () => {
    corp = await startCorporateProxy({ hosts: TEST_HOSTS, credentials: { user: 'keyway', password: PROXY_PASSWORD } });
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    auth = await startAuthServer();
    proxy = await startProxy({
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET },
        {
          id: 'machine',
          type: 'client_credentials',
          domains: ['other.example.test'],
          secret: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
          provider: 'testauth',
        },
      ],
      env: { CORP_PROXY: `http://keyway:${encodeURIComponent(PROXY_PASSWORD)}@127.0.0.1:${corp.port}` },
      config: {
        // keyway's own map sends these names where nothing listens: only through squid (whose hosts
        // file says 127.0.0.1) do they reach the upstream. plain.example.test (no_proxy) stays direct.
        proxy: {
          hosts: {
            ...Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
            'api.example.test': '127.0.0.2',
            'tunnel.example.test': '127.0.0.2',
            'other.example.test': '127.0.0.2',
            'bad.example.test': '10.0.0.1',
          },
        },
        // connect_to: name: squid resolves the names (keyway's own map would send them nowhere).
        egress: { proxy: 'env:CORP_PROXY', no_proxy: ['plain.example.test'], connect_to: 'name' },
        providers: { testauth: { token_url: auth.tokenUrl, authorize_url: auth.authUrl } },
      },
    });
  });

  afterAll(async () => {
    for (const text of [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')]) {
      expect(findLeak(text, PROXY_PASSWORD), 'the proxy password in an output').toBeUndefined();
      expect(findLeak(text, SECRET), 'the grant secret in an output').toBeUndefined();
    }
    await proxy?.stop();
    // squid logs a CONNECT when its tunnel ends: once keyway has closed its connections, every one
    // keyway made is there, signed in as keyway, and none to the no_proxy host.
    const tokenPort = new URL(auth.tokenUrl).port;
    const wanted = [
      `api.example.test:${upstream.port}`,
      `tunnel.example.test:${upstream.port}`,
      `other.example.test:${upstream.port}`,
      `127.0.0.1:${tokenPort}`,
    ];
    const logged = await waitFor(
      () => (wanted.every((w) => corp.log().some((l) => l.startsWith(`CONNECT ${w} 200 keyway`))) ? corp.log() : undefined),
      'the CONNECT lines',
      10_000,
    ).catch(() => corp.log());
    for (const w of wanted) expect(logged, w).toContainEqual(`CONNECT ${w} 200 keyway`);
    expect(logged.filter((l) => l.includes('plain.example.test'))).toEqual([]);
    // No agent was given a tunnel to squid itself (the egress proxy is no destination).
    expect(logged.filter((l) => l.includes(`:${corp.port} `))).toEqual([]);
    await upstream?.close();
    await auth?.close();
    await corp?.stop();
  });

  it('an intercepted request goes through the company proxy, with keyway signed in to it', async () => {
    const out = await viaKeyway(`https://api.example.test:${upstream.port}/echo`);
    expect(out).toMatch(/000 200$|200 200$/);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('a blind tunnel and a token endpoint go through it too; a no_proxy host does not', async () => {
    const tunnelled = await viaKeyway(`https://tunnel.example.test:${upstream.port}/echo`, ['-H', 'Authorization: Bearer the-client-own'], TLS_FIXTURES.caPath);
    // Blind: the upstream got the client's own header and refused it.
    expect(tunnelled).toMatch(/200 401$/);

    const before = auth.tokenCalls['client_credentials'] ?? 0;
    const machine = await viaKeyway(`https://other.example.test:${upstream.port}/echo`);
    // The upstream takes only the api grant's secret: a 401 here still shows the token was fetched and sent.
    expect(machine).toMatch(/401$/);
    // Fetched, then fetched again once after the upstream's 401 (the replay rule for OAuth grants).
    expect((auth.tokenCalls['client_credentials'] ?? 0) - before).toBe(2);

    // Direct, by keyway's own map (127.0.0.1): the no_proxy host (checked in squid's log at the end).
    const direct = await viaKeyway(`https://plain.example.test:${upstream.port}/echo`, ['-H', 'Authorization: Bearer the-client-own'], TLS_FIXTURES.caPath);
    expect(direct).toMatch(/200 401$/);
  });

  it('a WebSocket upgrade goes through it', async () => {
    const tunnel = await openTunnel(proxy.port, `api.example.test:${upstream.port}`);
    const ws = new WebSocket(`wss://api.example.test:${upstream.port}/ws`, {
      createConnection: (() =>
        tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: readFileSync(proxy.caPath, 'utf8') })) as unknown as typeof netConnect,
    });
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data.toString('utf8')));
      ws.once('error', reject);
    });
    ws.close();
    // The upstream's echo of the upgrade's Authorization: keyway's, sent through the company proxy.
    // (the leak guard masks the secret the upstream echoes back; api.example.test is reachable through squid only).
    expect(JSON.parse(first)).toEqual({ authorization: `Bearer ${'*'.repeat(SECRET.length)}` });
  });

  it('a destination refused by the egress checks is refused before the proxy is asked', async () => {
    const answer = await rawConnect(proxy.port, '169.254.169.254:443');
    expect(answer.status).toBe(403);
    expect(answer.headers.get('x-keyway-error')).toBe('host_not_allowed');
    // A name that keyway resolves to a refused address (its own map: 10.0.0.1) is refused too.
    const mapped = await viaKeyway(`https://bad.example.test:${upstream.port}/echo`);
    expect(mapped).toMatch(/403 000$/);
  });

  it("the egress proxy's own address is no destination, although allow_networks covers it: 403 host_not_allowed, the proxy never asked", async () => {
    const refusedConnect = async (authority: string) => {
      const answer = await rawConnect(proxy.port, authority);
      outputs.push(answer.body);
      expect(answer.status, authority).toBe(403);
      expect(answer.headers.get('x-keyway-error'), authority).toBe('host_not_allowed');
      expect(JSON.parse(answer.body).error.message, authority).toMatch(/egress proxy's own address/);
    };
    // Its address in two spellings; a name keyway maps to another local address (squid would
    // resolve it to its own); a no_proxy name keyway would dial directly.
    for (const authority of [
      `127.0.0.1:${corp.port}`,
      `[::ffff:127.0.0.1]:${corp.port}`,
      `tunnel.example.test:${corp.port}`,
      `plain.example.test:${corp.port}`,
    ])
      await refusedConnect(authority);
    // A plain http:// request to it is refused the same way.
    const plain = await curl(['-sS', '-x', proxy.url, '-w', '\n%{http_code}', `http://127.0.0.1:${corp.port}/`], cleanEnv());
    outputs.push(plain.stdout, plain.stderr);
    expect(plain.stdout).toMatch(/egress proxy's own address[\s\S]*\n403$/);
    // Another port of the same host is still a destination like any other.
    expect(await viaKeyway(`https://api.example.test:${upstream.port}/echo`)).toMatch(/200$/);
  });
});

describe('egress.proxy: a company proxy that refuses, or is down', () => {
  let corp: CorporateProxy;
  let upstream: TestUpstream;
  let wrongPassword: TestProxy;
  let noPassword: TestProxy;
  const PASSWORD = `corp-${randomBytes(12).toString('hex')}`;
  const WRONG = `corp-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    corp = await startCorporateProxy({ hosts: TEST_HOSTS, credentials: { user: 'keyway', password: PASSWORD } });
    upstream = await startUpstream();
    wrongPassword = await startProxy({
      env: { CORP_PROXY: `http://keyway:${WRONG}@127.0.0.1:${corp.port}` },
      config: { egress: { proxy: 'env:CORP_PROXY' } },
    });
    noPassword = await startProxy({ config: { egress: { proxy: corp.url } } });
  });

  afterAll(async () => {
    for (const p of [wrongPassword, noPassword]) {
      for (const text of [...p.logs, readFileSync(p.auditPath, 'utf8')]) {
        expect(findLeak(text, WRONG)).toBeUndefined();
        expect(findLeak(text, PASSWORD)).toBeUndefined();
      }
    }
    await wrongPassword?.stop();
    await noPassword?.stop();
    await upstream?.close();
    await corp?.stop();
  });

  /** A blind tunnel's CONNECT through keyway: its status, code and message as written. */
  async function tunnelThrough(p: TestProxy, authority: string) {
    const answer = await rawConnect(p.port, authority, [], 15_000);
    return {
      status: answer.status,
      code: answer.headers.get('x-keyway-error'),
      message: (JSON.parse(answer.body) as { error: { message: string } }).error.message,
    };
  }

  it('credentials refused, or none given where the proxy asks: 502 upstream_unreachable naming the proxy (never its password)', async () => {
    const wrong = await tunnelThrough(wrongPassword, `tunnel.example.test:${upstream.port}`);
    expect(wrong).toEqual({
      status: 502,
      code: 'upstream_unreachable',
      message: `the egress proxy http://127.0.0.1:${corp.port} refused keyway's credentials (407)`,
    });
    const none = await tunnelThrough(noPassword, `tunnel.example.test:${upstream.port}`);
    expect(none).toMatchObject({ status: 502, code: 'upstream_unreachable', message: expect.stringMatching(/asks for credentials \(407\)/) });
    expect(await waitFor(() => wrongPassword.auditLines().find((l) => l['code'] === 'upstream_unreachable'), 'the refusal line')).toMatchObject({
      decision: 'error',
      host: 'tunnel.example.test',
    });
  });

  it('the proxy down: 502 upstream_unreachable, and keyway keeps serving', async () => {
    await corp.stop();
    const down = await tunnelThrough(wrongPassword, `tunnel.example.test:${upstream.port}`);
    expect(down).toEqual({
      status: 502,
      code: 'upstream_unreachable',
      message: `the egress proxy http://127.0.0.1:${corp.port} could not be reached (ECONNREFUSED)`,
    });
    const again = await tunnelThrough(wrongPassword, `other.example.test:${upstream.port}`);
    expect(again.status).toBe(502);
  });
});

describe('egress.proxy: connect_to address (the default) and name', () => {
  it('by default the CONNECT names the address keyway checked, and a name keyway cannot resolve is refused before the proxy is asked', async () => {
    const corp = await startCorporateProxy({ hosts: TEST_HOSTS });
    const upstream = await startUpstream();
    const proxy = await startProxy({ config: { egress: { proxy: corp.url } } });
    try {
      // A blind tunnel to a name keyway maps to 127.0.0.1: squid is asked for 127.0.0.1, not the name.
      const tunnel = await openTunnel(proxy.port, `tunnel.example.test:${upstream.port}`);
      tunnel.destroy();
      const unresolvable = await rawConnect(proxy.port, 'nowhere.invalid:443', [], 15_000);
      expect(unresolvable.status).toBe(502);
      expect(JSON.parse(unresolvable.body).error).toMatchObject({
        code: 'upstream_unreachable',
        message: 'cannot resolve nowhere.invalid',
        hint: expect.stringMatching(/connect_to: name/),
      });
      await proxy.stop();
      const logged = await waitFor(() => (corp.log().some((l) => l.startsWith('CONNECT 127.0.0.1:')) ? corp.log() : undefined), 'the CONNECT line', 10_000);
      expect(logged).toContainEqual(`CONNECT 127.0.0.1:${upstream.port} 200 -`);
      expect(logged.filter((l) => l.includes('tunnel.example.test') || l.includes('nowhere.invalid'))).toEqual([]);
    } finally {
      await proxy.stop();
      await upstream.close();
      await corp.stop();
    }
  });

  it('with connect_to: name, a name keyway cannot resolve goes to the proxy by name, and its refusal is passed on', async () => {
    const corp = await startCorporateProxy({ hosts: TEST_HOSTS });
    const proxy = await startProxy({ config: { egress: { proxy: corp.url, connect_to: 'name' } } });
    try {
      // Not in proxy.hosts, not in DNS here, not in squid's hosts file: squid cannot reach it either.
      const answer = await rawConnect(proxy.port, 'nowhere.invalid:443', [], 15_000);
      expect(answer.status).toBe(502);
      expect(JSON.parse(answer.body).error.message).toMatch(
        new RegExp(`the egress proxy http://127\\.0\\.0\\.1:${corp.port} answered 5\\d\\d to CONNECT nowhere\\.invalid:443`),
      );
    } finally {
      await proxy.stop();
      await corp.stop();
    }
  });
});
