import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import { OAUTH_STATE_PREFIX, type OAuthState } from '../../src/credentials/issuing/oauth-state.ts';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer, type TokenResponse } from '../helpers/auth-server.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { slack } from '../helpers/load.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Refresh against a real authorization server (oidc-provider, rotating refresh tokens): tokens are
// opaque and the upstream checks each one by introspection, so a stale or revoked token really fails.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the upstream saw: every request, with the bearer token and body it carried, and its answer. */
interface Hit {
  method: string;
  path: string;
  token: string;
  body: string | undefined;
  status: number;
}

/** A request to the scripted token endpoint: how the client credentials and parameters arrived. */
interface ScriptedCall {
  headers: IncomingHttpHeaders;
  body: string;
}

interface Result {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
}

/** Decodes application/x-www-form-urlencoded text (RFC 6749 2.3.1 encodes the Basic id and secret this way). */
const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));

describe('OAuth2 refresh', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  /** A second proxy whose token requests time out after 1 s, for the failure cases. */
  let failing: TestProxy;
  let client: ProxyAgent;
  let failingClient: ProxyAgent;
  let scripted: Server;
  let scriptedUrl: string;
  const scriptedCalls: ScriptedCall[] = [];
  const scriptedTokens = new Set<string>();
  const hits: Hit[] = [];
  /** How far each proxy's token clock (expiry, refresh backoff) runs ahead of real time: tests move it instead of sleeping. */
  let proxyClockAheadMs = 0;
  let failingClockAheadMs = 0;
  /** Every real token value this file handled, for the canary search at the end. */
  const secrets = new Set<string>();
  /** Everything keyway said back: error bodies and CLI output, for the canary search. */
  const outputs: string[] = [];

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({
      handler: (req, res, body) => {
        const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
        const hit: Hit = { method: req.method ?? '', path: req.url ?? '', token, body: body?.toString('utf8'), status: 0 };
        hits.push(hit);
        void (async () => {
          const ok = token !== '' && (scriptedTokens.has(token) || (await auth.introspect(token)));
          hit.status = ok ? 200 : 401;
          if (!ok) {
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
            return;
          }
          const text = JSON.stringify({ method: req.method, path: req.url, body: hit.body ?? null });
          res.writeHead(200, { 'content-type': 'application/json' }).end(text);
        })().catch(() => res.writeHead(500).end());
        return true;
      },
    });

    // A token endpoint we script, recording how the client authenticated (not oidc-provider).
    scripted = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        scriptedCalls.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const token = `scripted-at-${randomBytes(12).toString('hex')}`;
        scriptedTokens.add(token);
        secrets.add(token);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600 }));
      });
    });
    scripted.listen(0, '127.0.0.1');
    await once(scripted, 'listening');
    scriptedUrl = `http://127.0.0.1:${(scripted.address() as AddressInfo).port}/token`;

    const testauth = {
      token_url: auth.tokenUrl,
      authorize_url: auth.authUrl,
      revoke_url: auth.revokeUrl,
      client_id: CLIENT_ID,
      client_secret: 'env:TEST_CLIENT_SECRET',
    };
    proxy = await startProxy({
      config: {
        oauth: { refresh_skew: '1s' },
        providers: {
          testauth,
          'scripted-basic': { token_url: scriptedUrl, client_auth: 'basic', token_body: 'form' },
          'scripted-body': { token_url: scriptedUrl, client_auth: 'body', token_body: 'form' },
          'scripted-json': { token_url: scriptedUrl, client_auth: 'basic', token_body: 'json', extra_params: { audience: 'https://api.example.test' } },
        },
      },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET },
      tokenClock: () => Date.now() + proxyClockAheadMs,
    });
    failing = await startProxy({
      config: { oauth: { token_timeout: '1s' }, providers: { testauth } },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET },
      tokenClock: () => Date.now() + failingClockAheadMs,
    });
    // Enough connections for every request of the burst test to be in flight at once.
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') }, connections: 200 });
    failingClient = new ProxyAgent({ uri: failing.url, requestTls: { ca: readFileSync(failing.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await client?.close();
    await failingClient?.close();
    await proxy?.stop();
    await failing?.stop();
    await upstream?.close();
    scripted?.closeAllConnections();
    await new Promise<void>((resolve) => (scripted ? scripted.close(() => resolve()) : resolve()));
    await auth?.close();
  });
  beforeEach(() => {
    auth.mode = 'normal';
    auth.accessTokenTtl = 3600;
  });

  async function obtain(): Promise<TokenResponse> {
    const tokens = await auth.obtainTokens();
    expect(tokens.refresh_token).toBeTruthy();
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token!);
    return tokens;
  }

  async function cli(p: TestProxy, args: string[], stdin?: string) {
    const r = await p.cli(args, stdin);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  /** Adds a grant with the CLI and waits until the running proxy has loaded its secret. */
  async function addGrant(id: string, material: Record<string, unknown>, options: { p?: TestProxy; type?: string; provider?: string } = {}): Promise<void> {
    const p = options.p ?? proxy;
    const add = await cli(p, [
      'grants',
      'add',
      id,
      '--type',
      options.type ?? 'oauth2',
      '--domains',
      'api.example.test',
      '--provider',
      options.provider ?? 'testauth',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const set = await cli(p, ['secrets', 'set', id, '--stdin'], JSON.stringify(material));
    expect(set.code, set.stderr).toBe(0);
    const deadline = Date.now() + 3_000;
    while (p.running.services.store.get<StoredGrant>(grantRecordId(id))?.secret === undefined) {
      if (Date.now() > deadline) throw new Error(`the proxy did not load grant ${id} in time`);
      await sleep(50);
    }
  }

  async function send(
    grant: string,
    options: { p?: TestProxy; method?: string; path?: string; body?: string | Buffer | Readable; headers?: Record<string, string> } = {},
  ): Promise<Result> {
    const started = Date.now();
    const dispatcher = (options.p ?? proxy) === proxy ? client : failingClient;
    const res = await request(`https://api.example.test:${upstream.port}${options.path ?? '/echo'}`, {
      dispatcher,
      method: (options.method ?? 'GET') as 'GET',
      headers: { 'x-keyway-grant': grant, ...options.headers }, // fresh object per request
      body: options.body ?? null,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) outputs.push(text);
    return { status: res.statusCode, headers: res.headers, text, ms: Date.now() - started };
  }

  const errorOf = (r: Result) => (JSON.parse(r.text) as { error: { code: string; message: string; grant: string | null; hint: string | null } }).error;
  const auditFor = (p: TestProxy, grant: string) => p.auditLines().filter((l) => l['grant'] === grant && l['decision'] !== 'admin'); // not the CLI's writes
  /** The grant's audit lines once there are `count` of them: a line is written when the response closes, just after the client has it. */
  async function auditLines(p: TestProxy, grant: string, count: number): Promise<Array<Record<string, unknown>>> {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const lines = auditFor(p, grant);
      if (lines.length >= count || Date.now() > deadline) return lines;
      await sleep(25);
    }
  }

  /** The live token state of every OAuth grant, read from the store on disk with the master key. */
  async function liveStates(p: TestProxy): Promise<Map<string, OAuthState>> {
    const { key } = await loadMasterKey({ dataDir: join(p.home, 'data'), env: { KEYWAY_MASTER_KEY: p.env['KEYWAY_MASTER_KEY']! } });
    const store = await Store.open(join(p.home, 'data', 'store.json'), key);
    try {
      return new Map(store.entries<OAuthState>(OAUTH_STATE_PREFIX).map(([id, s]) => [id.slice(OAUTH_STATE_PREFIX.length), s]));
    } finally {
      store.close();
    }
  }

  /**
   * Makes an access token fail at the provider while it still looks fresh to keyway. Not through
   * /token/revocation: oidc-provider's revocation of an access token also revokes every refresh
   * token of its grant (helpers/revoke.js), which would turn this into an invalid_grant test.
   */
  async function killAccessToken(token: string): Promise<void> {
    const found = await auth.provider.AccessToken.find(token);
    expect(found, 'the access token is known to the provider').toBeTruthy();
    await found!.destroy();
    expect(await auth.introspect(token)).toBe(false);
  }

  it('refreshes an expired access token once, then serves with the new one', async () => {
    const tokens = await obtain();
    const stale = `expired-${randomBytes(6).toString('hex')}`;
    secrets.add(stale);
    await addGrant('expired', { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 });
    const before = auth.tokenCalls['refresh_token'] ?? 0;
    const res = await send('expired');
    expect(res.status, res.text).toBe(200);
    expect(auth.tokenCalls['refresh_token']).toBe(before + 1);
    expect(hits.map((h) => h.token)).not.toContain(stale);
    expect((await auditLines(proxy, 'expired', 1)).at(-1)).toMatchObject({ decision: 'inject', status: 200, refreshed: true });
  });

  it('200 concurrent requests on an expired grant: one refresh_token call, 200 successes, and the rotated refresh token still works', async () => {
    const tokens = await obtain();
    const stale = `burst-stale-${randomBytes(6).toString('hex')}`;
    secrets.add(stale);
    await addGrant('burst', { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 });
    // A slow token endpoint keeps the refresh in flight while all 200 requests arrive: 1.5 s on an
    // idle machine, stretched by the measured load (on a busy one the requests arrive more slowly).
    auth.mode = 'slow';
    auth.slowMs = slack(1_500, 8_000);
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    const arrivals = auth.tokenArrivals;
    const hitsBefore = hits.length;

    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => send('burst', { path: `/echo?i=${i}` })));
    auth.mode = 'normal';

    const statuses = results.map((r) => r.status);
    expect(
      statuses.filter((s) => s !== 200),
      results.find((r) => r.status !== 200)?.text,
    ).toEqual([]);
    expect(auth.tokenArrivals - arrivals).toBe(1);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);
    const burstHits = hits.slice(hitsBefore).filter((h) => h.path.startsWith('/echo?i='));
    expect(burstHits).toHaveLength(200);
    const used = new Set(burstHits.map((h) => h.token));
    expect(used.size).toBe(1); // everyone got the one refreshed token
    expect(used.has(stale)).toBe(false);
    const lines = await auditLines(proxy, 'burst', 200);
    expect(lines).toHaveLength(200);
    // Requests that waited on the single flight are audited as refreshed; with a 1.5 s refresh, most did.
    const joined = lines.filter((l) => l['refreshed'] === true).length;
    expect(joined).toBeGreaterThan(50);

    // The rotated refresh token was persisted and is the live one at the provider; the old one is spent.
    const state = (await liveStates(proxy)).get('burst');
    expect(state?.refreshToken).toBeTruthy();
    secrets.add(state!.refreshToken!);
    expect(state!.refreshToken).not.toBe(tokens.refresh_token);
    expect(state!.accessToken).toBe([...used][0]);
    expect(await auth.introspect(state!.refreshToken!)).toBe(true);

    // And it really refreshes: `keyway refresh` spends the stored refresh token at the provider.
    const refreshed = await cli(proxy, ['refresh', 'burst', '--json']);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(2);
    const after = (await liveStates(proxy)).get('burst');
    secrets.add(after!.refreshToken!);
    secrets.add(after!.accessToken!);
    expect(after!.refreshToken).not.toBe(state!.refreshToken);
    expect(await auth.introspect(after!.refreshToken!)).toBe(true);
    expect(await auth.introspect(state!.refreshToken!)).toBe(false); // rotated away
    const again = await send('burst', { path: '/echo?after-burst' });
    expect(again.status, again.text).toBe(200);
    // 200 requests through keyway and two CLI runs: past 30 s on a busy 2-core machine.
  });

  it('a reused (rotated) refresh token: 401 grant_needs_reconnect with a keyway connect hint, nothing sent upstream, status needs_reconnect', async () => {
    const tokens = await obtain();
    // Someone else refreshes with it first: the provider rotates it away.
    const direct = await request(auth.tokenUrl, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }).toString(),
    });
    const rotated = (await direct.body.json()) as TokenResponse;
    expect(direct.statusCode).toBe(200);
    expect(rotated.refresh_token).toBeTruthy();
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    secrets.add(rotated.access_token);
    secrets.add(rotated.refresh_token!);

    const stale = `reused-stale-${randomBytes(6).toString('hex')}`;
    secrets.add(stale);
    await addGrant('reused', { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 });
    const hitsBefore = hits.length;
    const calls = auth.tokenCalls['refresh_token'] ?? 0;

    const res = await send('reused');
    expect(res.status, res.text).toBe(401);
    expect(res.headers['x-keyway-error']).toBe('grant_needs_reconnect');
    const error = errorOf(res);
    expect(error.code).toBe('grant_needs_reconnect');
    expect(error.grant).toBe('reused');
    expect(error.hint).toContain('keyway connect');
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);

    // Asked again: refused from the stored status, without another call to the provider.
    const arrivals = auth.tokenArrivals;
    const second = await send('reused');
    expect(second.status).toBe(401);
    expect(errorOf(second).code).toBe('grant_needs_reconnect');
    expect(auth.tokenArrivals).toBe(arrivals);

    expect(hits.slice(hitsBefore)).toEqual([]); // the upstream never saw a request, let alone a stale token
    expect(hits.map((h) => h.token)).not.toContain(stale);
    expect(await auditLines(proxy, 'reused', 2)).toHaveLength(2);
    expect(auditFor(proxy, 'reused').at(-1)).toMatchObject({ decision: 'error', code: 'grant_needs_reconnect', status: 401 });

    const list = await cli(proxy, ['grants', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const row = (JSON.parse(list.stdout) as Array<{ id: string; status: string }>).find((g) => g.id === 'reused');
    expect(row?.status).toBe('needs_reconnect');
  });

  it('upstream 401 on a fresh-looking token: one refresh, one replay of a POST with its JSON body', async () => {
    const tokens = await obtain();
    await addGrant('replay', { refreshToken: tokens.refresh_token, accessToken: tokens.access_token, expiresAt: Date.now() + 3_600_000 });
    const warm = await send('replay', { path: '/echo?warm' });
    expect(warm.status, warm.text).toBe(200);
    expect(hits.at(-1)?.token).toBe(tokens.access_token); // no refresh needed

    await killAccessToken(tokens.access_token);
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    const payload = JSON.stringify({ hello: 'replay', n: 42, list: [1, 2, 3] });
    const res = await send('replay', { method: 'POST', path: '/echo?post', body: payload, headers: { 'content-type': 'application/json' } });
    expect(res.status, res.text).toBe(200);
    expect((JSON.parse(res.text) as { body: string }).body).toBe(payload);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);

    const posts = hits.filter((h) => h.path === '/echo?post');
    expect(posts).toHaveLength(2);
    expect(posts[0]).toMatchObject({ method: 'POST', token: tokens.access_token, body: payload, status: 401 });
    expect(posts[1]).toMatchObject({ method: 'POST', body: payload, status: 200 });
    expect(posts[1]!.token).not.toBe(tokens.access_token);
    secrets.add(posts[1]!.token);
    expect((await auditLines(proxy, 'replay', 2)).at(-1)).toMatchObject({ method: 'POST', status: 200, refreshed: true, replayed: true });
  });

  it('upstream 401 on a body over 1 MiB: the 401 passes through, once, and the audit line says the replay was skipped', async () => {
    const state = (await liveStates(proxy)).get('replay');
    expect(state?.accessToken).toBeTruthy();
    await killAccessToken(state!.accessToken!);
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    const big = Buffer.alloc(1024 * 1024 + 512 * 1024, 0x7a);

    // Declared length over the limit.
    const sized = await send('replay', { method: 'POST', path: '/echo?big-sized', body: big, headers: { 'content-type': 'application/octet-stream' } });
    expect(sized.status).toBe(401);
    expect(sized.text).toBe('{"error":"invalid_token"}'); // the upstream's own answer
    // Chunked, no length: kept while it streamed until it passed the limit.
    const chunked = await send('replay', {
      method: 'POST',
      path: '/echo?big-chunked',
      body: Readable.from(
        (function* () {
          for (let i = 0; i < 24; i++) yield big.subarray(i * 64 * 1024, (i + 1) * 64 * 1024);
        })(),
      ),
    });
    expect(chunked.status).toBe(401);

    for (const path of ['/echo?big-sized', '/echo?big-chunked']) {
      const seen = hits.filter((h) => h.path === path);
      expect(seen, path).toHaveLength(1); // not replayed
      expect(seen[0]!.body?.length).toBe(big.length);
      expect(seen[0]!.status).toBe(401);
    }
    const skipped = (await auditLines(proxy, 'replay', 4)).filter((l) => l['status'] === 401);
    expect(skipped).toHaveLength(2);
    for (const l of skipped) expect(String(l['replay']), JSON.stringify(skipped)).toMatch(/skipped.*1 MiB/);
    expect(auth.tokenCalls['refresh_token'] ?? 0).toBe(calls); // no refresh for a request that cannot be replayed

    // A small request afterwards refreshes and replays as usual, once past the renew_floor (30 s, on
    // keyway's clock) of the refresh the previous test's 401 made: a 401 renews at most once per floor.
    proxyClockAheadMs += 31_000;
    const small = await send('replay', { path: '/echo?after-big' });
    expect(small.status, small.text).toBe(200);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);
  });

  it("client_credentials with no secret of its own uses its provider's client (providers.X.client_id/client_secret)", async () => {
    const grantsBefore = proxy.running.counts().grants;
    const add = await cli(proxy, [
      'grants',
      'add',
      'machine-provider',
      '--type',
      'client_credentials',
      '--domains',
      'api.example.test',
      '--provider',
      'testauth',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const before = auth.tokenCalls['client_credentials'] ?? 0;
    // The running proxy takes the new grant from the store within a second.
    await waitFor(() => (proxy.running.counts().grants > grantsBefore ? true : undefined), 'the new grant in the proxy');
    const res = await send('machine-provider', { path: '/echo?cc-provider' });
    expect(res.status, res.text).toBe(200);
    expect((auth.tokenCalls['client_credentials'] ?? 0) - before).toBe(1);
    secrets.add(hits.at(-1)!.token);
    // The upstream checks the token at the authorization server: issued to the provider's client.
    expect((await auth.inspect(hits.at(-1)!.token))['client_id']).toBe(CLIENT_ID);
  });

  it('client_credentials: fetches its token on first use, reuses it while fresh, fetches again once it expires', async () => {
    auth.accessTokenTtl = 60; // seconds; refresh_skew is 1s in this proxy's config
    await addGrant('machine', { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }, { type: 'client_credentials' });
    const calls = () => auth.tokenCalls['client_credentials'] ?? 0;
    const before = calls();

    const first = await send('machine', { path: '/echo?cc-1' });
    expect(first.status, first.text).toBe(200);
    expect(calls() - before).toBe(1);
    const t1 = hits.at(-1)!.token;
    secrets.add(t1);
    const second = await send('machine', { path: '/echo?cc-2' });
    expect(second.status).toBe(200);
    expect(calls() - before).toBe(1);
    expect(hits.at(-1)!.token).toBe(t1);

    // Past the token's 60 s on keyway's clock, without waiting: the provider would still take t1,
    // so only keyway's own expiry check keeps it from being sent again.
    proxyClockAheadMs += 61_000;
    const third = await send('machine', { path: '/echo?cc-3' });
    expect(third.status, third.text).toBe(200);
    expect(calls() - before).toBe(2);
    const t2 = hits.at(-1)!.token;
    secrets.add(t2);
    expect(t2).not.toBe(t1);
    expect(hits.filter((h) => h.token === t1)).toHaveLength(2); // never sent after it expired
    expect((await auditLines(proxy, 'machine', 3)).map((l) => l['refreshed'])).toEqual([true, false, true]);
  });

  describe('a token endpoint that fails (token_timeout 1s)', () => {
    const modes = ['down', 'slow', 'error500', 'garbage'] as const;

    for (const mode of modes) {
      it(`${mode}: 502 token_refresh_failed promptly, no second attempt within the backoff, no stale token sent`, async () => {
        const tokens = await obtain();
        const stale = `fail-${mode}-stale-${randomBytes(6).toString('hex')}`;
        secrets.add(stale);
        await addGrant(`fail-${mode}`, { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 }, { p: failing });
        auth.mode = mode;
        // Stretched by the measured load (CI at load ~5 once took longer than a fixed 3 s): the
        // claim is that keyway gives up at its 1 s timeout, before the slow endpoint answers.
        auth.slowMs = slack(3_000, 30_000);
        const hitsBefore = hits.length;
        const arrivals = auth.tokenArrivals;

        const first = await send(`fail-${mode}`, { p: failing });
        expect(first.status, first.text).toBe(502);
        expect(first.headers['x-keyway-error']).toBe('token_refresh_failed');
        expect(errorOf(first)).toMatchObject({ code: 'token_refresh_failed', grant: `fail-${mode}` });
        expect(first.ms).toBeLessThan(mode === 'slow' ? auth.slowMs : slack(1_500));
        if (mode === 'slow') expect(first.ms).toBeGreaterThanOrEqual(900); // it did wait for the timeout
        expect(auth.tokenArrivals - arrivals).toBe(1);

        // Right after: backing off, so the endpoint is not called again.
        const second = await send(`fail-${mode}`, { p: failing });
        expect(second.status).toBe(502);
        expect(errorOf(second).code).toBe('token_refresh_failed');
        expect(second.ms).toBeLessThan(slack(500));
        expect(auth.tokenArrivals - arrivals).toBe(1);

        expect(hits.slice(hitsBefore)).toEqual([]);
        expect(hits.map((h) => h.token)).not.toContain(stale);
        const lines = await auditLines(failing, `fail-${mode}`, 2);
        expect(lines.slice(-2).map((l) => [l['decision'], l['code'], l['status']])).toEqual([
          ['error', 'token_refresh_failed', 502],
          ['error', 'token_refresh_failed', 502],
        ]);
      });
    }

    it('once the endpoint is back and the backoff has passed, the same grants refresh and serve', async () => {
      failingClockAheadMs += 1_100; // past the first backoff step (1 s), on keyway's clock
      // 'slow' is left out: its refresh reached the provider after keyway gave up, which rotated it away.
      for (const mode of ['down', 'error500', 'garbage']) {
        const arrivals = auth.tokenArrivals;
        const res = await send(`fail-${mode}`, { p: failing });
        expect(res.status, `${mode}: ${res.text}`).toBe(200);
        expect(auth.tokenArrivals - arrivals).toBe(1);
      }
    });
  });

  describe('provider quirks against a scripted token endpoint', () => {
    const clientId = 'keyway client:id/ü';
    const clientSecret = 's3cr:et+/= &%~é';

    beforeAll(() => {
      secrets.add(clientSecret);
    });

    it('client_auth basic, form body: Basic header with form-encoded id and secret, nothing in the body', async () => {
      await addGrant('quirk-basic', { clientId, clientSecret }, { type: 'client_credentials', provider: 'scripted-basic' });
      const n = scriptedCalls.length;
      const res = await send('quirk-basic');
      expect(res.status, res.text).toBe(200);
      expect(scriptedCalls).toHaveLength(n + 1);
      const call = scriptedCalls.at(-1)!;
      expect(call.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
      const basic = call.headers.authorization ?? '';
      expect(basic).toMatch(/^Basic /);
      const decoded = Buffer.from(basic.slice(6), 'base64').toString('utf8');
      const parts = decoded.split(':');
      expect(parts).toHaveLength(2); // the colons inside id and secret were encoded
      expect(formDecode(parts[0]!)).toBe(clientId);
      expect(formDecode(parts[1]!)).toBe(clientSecret);
      const params = Object.fromEntries(new URLSearchParams(call.body));
      expect(params).toEqual({ grant_type: 'client_credentials' });
      expect(scriptedTokens.has(hits.at(-1)!.token)).toBe(true);
    });

    it('client_auth body, form body: id and secret as parameters, no Authorization header (refresh_token grant)', async () => {
      const refreshToken = `scripted-rt-${randomBytes(8).toString('hex')}`;
      secrets.add(refreshToken);
      await addGrant(
        'quirk-body',
        { clientId, clientSecret, refreshToken, accessToken: 'quirk-old', expiresAt: Date.now() - 1000 },
        { provider: 'scripted-body' },
      );
      const n = scriptedCalls.length;
      const res = await send('quirk-body');
      expect(res.status, res.text).toBe(200);
      expect(scriptedCalls).toHaveLength(n + 1);
      const call = scriptedCalls.at(-1)!;
      expect(call.headers.authorization).toBeUndefined();
      expect(call.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
      const params = Object.fromEntries(new URLSearchParams(call.body));
      expect(params).toEqual({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret });
      // No refresh token in the answer: the old one is kept (RFC 6749 6).
      expect((await liveStates(proxy)).get('quirk-body')?.refreshToken).toBe(refreshToken);
    });

    it('token_body json with extra params: a JSON body with application/json, Basic client auth', async () => {
      await addGrant('quirk-json', { clientId, clientSecret }, { type: 'client_credentials', provider: 'scripted-json' });
      const n = scriptedCalls.length;
      const res = await send('quirk-json');
      expect(res.status, res.text).toBe(200);
      expect(scriptedCalls).toHaveLength(n + 1);
      const call = scriptedCalls.at(-1)!;
      expect(call.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(call.body)).toEqual({ grant_type: 'client_credentials', audience: 'https://api.example.test' });
      const decoded = Buffer.from((call.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
      expect(decoded.split(':').map(formDecode)).toEqual([clientId, clientSecret]);
    });
  });

  it('canary: no access or refresh token ever appears in the app log, the audit log, an error body or CLI output', async () => {
    for (const p of [proxy, failing]) {
      for (const [, s] of await liveStates(p)) {
        if (s.accessToken) secrets.add(s.accessToken);
        if (s.refreshToken) secrets.add(s.refreshToken);
      }
      const list = await cli(p, ['grants', 'list', '--json']);
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(p === proxy ? '"burst"' : '"fail-slow"');
    }
    for (const id of ['burst', 'reused', 'replay', 'machine', 'quirk-body']) {
      const show = await cli(proxy, ['grants', 'show', id, '--json']);
      expect(show.code, show.stderr).toBe(0);
    }
    for (const h of hits) if (h.token) secrets.add(h.token);

    const haystack = [
      proxy.logs.join(''),
      failing.logs.join(''),
      existsSync(proxy.auditPath) ? readFileSync(proxy.auditPath, 'utf8') : '',
      existsSync(failing.auditPath) ? readFileSync(failing.auditPath, 'utf8') : '',
      ...outputs,
    ].join('\n');
    // The search is over real material: error bodies, refresh logs and listings are all in there.
    expect(haystack).toContain('token_refresh_failed');
    expect(haystack).toContain('grant_needs_reconnect');
    expect(haystack).toContain('token refreshed');
    expect(haystack).toContain('"burst"');
    expect(secrets.size).toBeGreaterThan(25);
    const leaked = [...secrets].filter((s) => s.length >= 8 && haystack.includes(s));
    expect(leaked).toEqual([]);
  });
});
