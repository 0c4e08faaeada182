// A 401 renews a grant's token at most once per renew_floor (issue 59, part 5). An API that answers
// `401 … error="invalid_token"` to every request used to make keyway ask its token endpoint once per
// agent request (a new DPoP key each time; an exchange per request for token_exchange): enough to
// hit an authorization server's per-client limits for every agent on the grant. Real peers: an
// HTTPS API on loopback that refuses everything on /storm and checks tokens by introspection on
// /legit, oidc-provider as the token endpoint of each grant type (DPoP-enforcing, client
// credentials, an RFC 8693 exchange), counting the tokens it issues.
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importSPKI, jwtVerify } from 'jose';
import type Provider from 'oidc-provider';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPES } from '../../src/credentials/types/token_exchange/exchange.ts';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { type FileIssuer, fileIssuer } from '../helpers/identity-issuer.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { type OidcServer, startDpopServer, startOidcServer } from '../helpers/oidc-server.ts';
import { waitFor } from '../helpers/wait.ts';

const DPOP_CLIENT = 'floor-dpop-client';
const DPOP_SECRET = `${CANARY}-floor-dpop-secret`;
const EXCHANGER = 'floor-exchanger';
const EXCHANGER_SECRET = `${CANARY}-floor-exchanger-secret`;
const IDENTITY_ISSUER = 'https://floor-identity.example.test';
const WORKER_KEY = `${CANARY}-floor-worker-key`;
const HOSTS = ['dpop.example.test', 'cc.example.test', 'tx.example.test', 'legit.example.test', 'shared.example.test', 'big.example.test'];
/** A 401 whose body is over the 64 KiB keyway keeps of a refusal it withholds. */
const BIG_REFUSAL = JSON.stringify({ error: 'invalid_token', detail: 'x'.repeat(200 * 1024) });
const STORM = 10;
const SECOND = 1_000;

describe('renew_floor: a 401 renews a grant at most once per floor; within it the 401 goes to the agent', () => {
  let dpopServer: OidcServer;
  let exchangeServer: OidcServer;
  let auth: AuthServer;
  let identity: FileIssuer;
  let api: Server;
  let port = 0;
  let proxy: TestProxy;
  let worker: ProxyAgent;
  let ahead = 0;
  /** Tokens each token endpoint issued. */
  const issued = { dpop: 0, exchange: new Map<string, number>() };
  /** Tokens the API saw on /legit, in order. */
  const legitTokens: string[] = [];
  /** Each request the API saw on /big: its path and its token. */
  const bigSeen: Array<{ path: string; token: string }> = [];
  const apiBasic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;

  beforeAll(async () => {
    dpopServer = await startDpopServer({ id: DPOP_CLIENT, secret: DPOP_SECRET });
    dpopServer.provider.on('grant.success', () => issued.dpop++);
    auth = await startAuthServer();
    identity = await fileIssuer(IDENTITY_ISSUER, join(mkdtempSync(join(tmpdir(), 'keyway-floor-')), 'jwks.json'));
    const identityKey = await importSPKI(identity.publicPem, 'RS256');
    exchangeServer = await startOidcServer(
      {
        clients: [
          {
            client_id: EXCHANGER,
            client_secret: EXCHANGER_SECRET,
            grant_types: [TOKEN_EXCHANGE_GRANT],
            response_types: [],
            redirect_uris: [],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        scopes: ['api'],
      },
      (provider: Provider) =>
        provider.registerGrantType(
          TOKEN_EXCHANGE_GRANT,
          async (ctx) => {
            const params = ctx.oidc.params as Record<string, string | undefined>;
            const { payload } = await jwtVerify(params['subject_token'] ?? '', identityKey, { issuer: IDENTITY_ISSUER, audience: 'keyway' });
            const sub = String(payload.sub);
            issued.exchange.set(sub, (issued.exchange.get(sub) ?? 0) + 1);
            const client = ctx.oidc.client!;
            const grant = new ctx.oidc.provider.Grant({ accountId: sub, clientId: client.clientId });
            grant.addOIDCScope('api');
            const token = new ctx.oidc.provider.AccessToken({ accountId: sub, client, grantId: await grant.save(), scope: 'api', gty: 'token-exchange' });
            ctx.body = { access_token: await token.save(), issued_token_type: TOKEN_TYPES.access_token, token_type: 'Bearer', expires_in: token.expiration };
          },
          ['subject_token', 'subject_token_type', 'audience'],
        ),
    );
    // The API: /storm refuses every token as invalid (in the scheme it came in); /legit takes a
    // token its authorization server says is active.
    api = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, async (req, res) => {
      req.resume();
      const authorization = req.headers.authorization ?? '';
      const scheme = authorization.startsWith('DPoP ') ? 'DPoP' : 'Bearer';
      const refuse = () =>
        res
          .writeHead(401, { 'www-authenticate': `${scheme} error="invalid_token"`, 'content-type': 'application/json', 'x-api-said': 'no' })
          .end('{"error":"invalid_token","from":"the api"}');
      if (req.url?.startsWith('/big')) {
        bigSeen.push({ path: req.url, token: authorization });
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'application/json' }).end(BIG_REFUSAL);
        return;
      }
      if (req.url?.startsWith('/legit')) {
        const token = authorization.replace(/^Bearer /, '');
        legitTokens.push(token);
        const answer = await fetch(auth.introspectUrl, {
          method: 'POST',
          headers: { authorization: apiBasic, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }).toString(),
        });
        if (((await answer.json()) as { active: boolean }).active) {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
          return;
        }
      }
      refuse();
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    port = (api.address() as AddressInfo).port;

    proxy = await startProxy(proxyOptions());
    worker = new ProxyAgent({ uri: `http://worker:${WORKER_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  /** The test's keyway: a second process on one home is started with the same. */
  const proxyOptions = (home?: string) => ({
    home,
    tokenClock: () => Date.now() + ahead,
    env: {
      DPOP_CLIENT: JSON.stringify({ clientId: DPOP_CLIENT, clientSecret: DPOP_SECRET }),
      EXCHANGER: JSON.stringify({ clientId: EXCHANGER, clientSecret: EXCHANGER_SECRET }),
      CC_SECRET: CLIENT_SECRET,
      WORKER_KEY,
    },
    config: {
      proxy: { hosts: Object.fromEntries([...TEST_HOSTS, ...HOSTS].map((h) => [h, '127.0.0.1'])) },
      providers: { testauth: { token_url: auth.tokenUrl, client_id: CLIENT_ID, client_secret: 'env:CC_SECRET' } },
      grants: {
        dp: { type: 'dpop', domains: ['dpop.example.test'], token_endpoint: `${dpopServer.issuer}/token`, scopes: ['api'], secret: 'env:DPOP_CLIENT' },
        cc: { type: 'client_credentials', domains: ['cc.example.test'], provider: 'testauth' },
        legit: { type: 'client_credentials', domains: ['legit.example.test'], provider: 'testauth' },
        shared: { type: 'client_credentials', domains: ['shared.example.test'], provider: 'testauth' },
        big: { type: 'client_credentials', domains: ['big.example.test'], provider: 'testauth' },
        tx: {
          type: 'token_exchange',
          domains: ['tx.example.test'],
          token_endpoint: `${exchangeServer.issuer}/token`,
          audience: 'https://tx.example.test',
          secret: 'env:EXCHANGER',
        },
      },
      agents: { worker: { key: 'env:WORKER_KEY', grants: ['dp', 'cc', 'legit', 'shared', 'big'] }, fleet: { grants: ['tx'] } },
      identities: [{ issuer: IDENTITY_ISSUER, jwks: identity.jwksPath, audience: 'keyway', map: [{ claims: { team: 'agents' }, agent: 'fleet' }] }],
    },
  });

  afterAll(async () => {
    await worker?.close();
    await proxy?.stop();
    api?.close();
    await dpopServer?.close();
    await exchangeServer?.close();
    await auth?.close();
  });

  async function call(dispatcher: ProxyAgent, host: string, path: string) {
    const res = await request(`https://${host}:${port}${path}`, { dispatcher });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  /** `count` requests one after another, each answered as the API answered it. */
  async function storm(dispatcher: ProxyAgent, host: string, scheme: 'DPoP' | 'Bearer', count = STORM): Promise<void> {
    for (let i = 0; i < count; i++) {
      const r = await call(dispatcher, host, `/storm/${i}`);
      expect(r.status, r.text).toBe(401);
      expect(r.headers['www-authenticate']).toBe(`${scheme} error="invalid_token"`);
      expect(r.headers['x-api-said']).toBe('no');
      expect(JSON.parse(r.text)).toEqual({ error: 'invalid_token', from: 'the api' });
    }
  }

  const linesOf = (grant: string, count: number) =>
    waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['grant'] === grant && String(l['path']).startsWith('/storm'));
      return found.length >= count ? found : undefined;
    }, `${count} audit lines of ${grant}`);

  const linesOfPath = (grant: string, path: string, count: number) =>
    waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['grant'] === grant && String(l['path']).startsWith(path));
      return found.length >= count ? found : undefined;
    }, `${count} audit lines of ${grant}`);

  it('dpop: ten requests to an API that refuses every token mint at most two tokens (and keys); each 401 reaches the agent', async () => {
    await storm(worker, 'dpop.example.test', 'DPoP');
    // The first request's token, and one renewal for its 401; none for the nine after.
    expect(issued.dpop, 'tokens minted at the token endpoint').toBe(2);
    const lines = await linesOf('dp', STORM);
    expect(lines[0]).toMatchObject({ status: 401, refreshed: true, replayed: true, signed: 'dpop' });
    for (const line of lines.slice(1)) expect(line).toMatchObject({ status: 401, replay: 'skipped: renewed within renew_floor' });
  });

  it('client credentials: the same storm asks the token endpoint at most twice', async () => {
    const before = auth.tokenCalls['client_credentials'] ?? 0;
    await storm(worker, 'cc.example.test', 'Bearer');
    expect((auth.tokenCalls['client_credentials'] ?? 0) - before).toBe(2);
    const lines = await linesOf('cc', STORM);
    expect(lines.filter((l) => l['replay'] === 'skipped: renewed within renew_floor').length).toBe(STORM - 1);
  });

  it('token_exchange: the floor is per subject; one user storm exchanges at most twice and leaves another user alone', async () => {
    const as = async (sub: string) => {
      const token = await identity.sign({ sub, aud: 'keyway', team: 'agents' });
      return new ProxyAgent({
        uri: proxy.url,
        token: `Basic ${Buffer.from(`jwt:${token}`).toString('base64')}`,
        requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
      });
    };
    const alice = await as('alice@example.test');
    const bob = await as('bob@example.test');
    try {
      await storm(alice, 'tx.example.test', 'Bearer');
      expect(issued.exchange.get('alice@example.test'), "alice's exchanges").toBe(2);
      // Bob's token is his own: alice's storm did not spend his renewal.
      await storm(bob, 'tx.example.test', 'Bearer', 1);
      expect(issued.exchange.get('bob@example.test'), "bob's exchanges: his first, and one renewal").toBe(2);
      const lines = await linesOf('tx', STORM + 1);
      expect(lines.at(-1)).toMatchObject({ on_behalf_of: 'bob@example.test', refreshed: true, replayed: true });
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('a 401 over 64 KiB: renewed and replayed once, then within the floor never sent again with the refused token; each reaches the agent whole', async () => {
    const before = auth.tokenCalls['client_credentials'] ?? 0;
    for (let i = 0; i < 5; i++) {
      const r = await call(worker, 'big.example.test', `/big/${i}`);
      expect(r.status).toBe(401);
      expect(r.text.length, `the 401 of /big/${i} whole`).toBe(BIG_REFUSAL.length);
      expect(r.text).toBe(BIG_REFUSAL);
    }
    expect((auth.tokenCalls['client_credentials'] ?? 0) - before, 'the first token and one renewal').toBe(2);
    // The first request went twice, with two tokens; every other once: no token twice on one request.
    expect(bigSeen.map((s) => s.path)).toEqual(['/big/0', '/big/0', '/big/1', '/big/2', '/big/3', '/big/4']);
    expect(bigSeen[0]!.token).not.toBe(bigSeen[1]!.token);
    for (const path of new Set(bigSeen.map((s) => s.path))) {
      const tokens = bigSeen.filter((s) => s.path === path).map((s) => s.token);
      expect(new Set(tokens).size, `${path} never sent twice with one token`).toBe(tokens.length);
    }
    const lines = await linesOfPath('big', '/big', 5);
    expect(lines[0]).toMatchObject({ status: 401, refreshed: true, replayed: true });
    for (const line of lines.slice(1)) expect(line).toMatchObject({ status: 401, replay: 'skipped: renewed within renew_floor' });
    for (const line of lines) expect(JSON.stringify(line)).not.toContain(bigSeen[0]!.token.slice(7));
  });

  it('the floor is kept with the token in the store: two keyway processes on one home share it', async () => {
    const second = await startProxy(proxyOptions(proxy.home));
    const other = new ProxyAgent({ uri: `http://worker:${WORKER_KEY}@127.0.0.1:${second.port}`, requestTls: { ca: readFileSync(second.caPath, 'utf8') } });
    try {
      const before = auth.tokenCalls['client_credentials'] ?? 0;
      for (let i = 0; i < STORM / 2; i++) {
        await storm(worker, 'shared.example.test', 'Bearer', 1);
        await storm(other, 'shared.example.test', 'Bearer', 1);
      }
      expect((auth.tokenCalls['client_credentials'] ?? 0) - before, 'token calls from both processes').toBe(2);
    } finally {
      await other.close();
      await second.stop();
    }
  });

  it('a token the provider revoked is still renewed once and the request succeeds; within the floor a second revocation reaches the agent; past it, renewed again', async () => {
    const calls = () => auth.tokenCalls['client_credentials'] ?? 0;
    const first = await call(worker, 'legit.example.test', '/legit/1');
    expect(first.status, first.text).toBe(200);
    const revoke = async (token: string) => {
      const r = await fetch(auth.revokeUrl, {
        method: 'POST',
        headers: { authorization: apiBasic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
      expect(r.status).toBe(200);
      expect(await auth.introspect(token)).toBe(false);
    };

    await revoke(legitTokens.at(-1)!);
    let before = calls();
    const renewed = await call(worker, 'legit.example.test', '/legit/2');
    expect(renewed.status, renewed.text).toBe(200);
    expect(calls() - before, 'one renewal').toBe(1);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/legit/2'), 'the renewed line');
    expect(line).toMatchObject({ status: 200, refreshed: true, replayed: true });

    // Revoked again at once: within the floor, the 401 goes to the agent and no token is asked for.
    await revoke(legitTokens.at(-1)!);
    before = calls();
    const floored = await call(worker, 'legit.example.test', '/legit/3');
    expect(floored.status).toBe(401);
    expect(calls() - before).toBe(0);

    // Past the floor (30 s by default, on keyway's token clock): renewed again.
    ahead += 31 * SECOND;
    const again = await call(worker, 'legit.example.test', '/legit/4');
    expect(again.status, again.text).toBe(200);
    expect(calls() - before).toBe(1);
  });
});
