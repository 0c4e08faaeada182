// token_exchange through keyway (RFC 8693): agents of one fleet sign in with identity tokens for
// different end users; keyway exchanges each user's token at an authorization server (oidc-provider
// with a token-exchange grant registered, which checks the subject token's signature and refuses a
// forged one) and calls the API with a token acting for that user. The API checks every token by
// introspection and answers with its subject; the audit line says on whose behalf.
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
import { CANARY, TLS_FIXTURES } from '../../../../test/helpers/fixtures.ts';
import { type FileIssuer, fileIssuer } from '../../../../test/helpers/identity-issuer.ts';
import { startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { type OidcServer, startOidcServer } from '../../../../test/helpers/oidc-server.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPES } from './exchange.ts';

const CLIENT = 'keyway-exchanger';
const SECRET = `${CANARY}-exchanger-secret`;
const IDENTITY_ISSUER = 'https://fleet-identity.example.test';
const basic = `Basic ${Buffer.from(`${CLIENT}:${SECRET}`).toString('base64')}`;

describe('token_exchange grants: one agent fleet acting for many end users', () => {
  let identity: FileIssuer;
  let stranger: FileIssuer;
  let auth: OidcServer;
  let api: Server;
  let apiPort = 0;
  let proxy: TestProxy;
  let exchanges = 0;
  let apiCalls = 0;
  const issuedTokens: string[] = [];
  const subjectTokens: string[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-exchange-'));
    identity = await fileIssuer(IDENTITY_ISSUER, join(dir, 'jwks.json'));
    stranger = await fileIssuer(IDENTITY_ISSUER, join(dir, 'stranger-jwks.json'));
    const identityKey = await importSPKI(identity.publicPem, 'RS256');
    const parameters = ['subject_token', 'subject_token_type', 'audience', 'resource', 'scope', 'requested_token_type'];
    auth = await startOidcServer(
      {
        clients: [
          {
            client_id: CLIENT,
            client_secret: SECRET,
            grant_types: [TOKEN_EXCHANGE_GRANT],
            response_types: [],
            redirect_uris: [],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        features: { introspection: { enabled: true, allowedPolicy: async () => true } },
        scopes: ['api'],
      },
      (provider: Provider) =>
        provider.registerGrantType(
          TOKEN_EXCHANGE_GRANT,
          async (ctx) => {
            exchanges++;
            const params = ctx.oidc.params as Record<string, string | undefined>;
            let sub: string;
            try {
              const verified = await jwtVerify(params['subject_token'] ?? '', identityKey, { issuer: IDENTITY_ISSUER, audience: 'keyway' });
              sub = String(verified.payload.sub);
            } catch {
              ctx.status = 400;
              ctx.body = { error: 'invalid_grant', error_description: 'the subject token does not verify' };
              return;
            }
            if (params['audience'] !== 'https://api.example.test' || params['subject_token_type'] !== TOKEN_TYPES.jwt) {
              ctx.status = 400;
              ctx.body = { error: 'invalid_target' };
              return;
            }
            const client = ctx.oidc.client!;
            const grant = new ctx.oidc.provider.Grant({ accountId: sub, clientId: client.clientId });
            grant.addOIDCScope('api');
            const token = new ctx.oidc.provider.AccessToken({ accountId: sub, client, grantId: await grant.save(), scope: 'api', gty: 'token-exchange' });
            const value = await token.save();
            issuedTokens.push(value);
            ctx.body = { access_token: value, issued_token_type: TOKEN_TYPES.access_token, token_type: 'Bearer', expires_in: token.expiration, scope: 'api' };
          },
          parameters,
        ),
    );
    // The API: every token introspected at the authorization server; the answer names its subject.
    api = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, async (req, res) => {
      apiCalls++;
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const answer = await fetch(`${auth.issuer}/token/introspection`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
      const seen = (await answer.json()) as { active: boolean; sub?: string };
      res
        .writeHead(seen.active ? 200 : 401, { 'content-type': 'application/json' })
        .end(JSON.stringify(seen.active ? { sub: seen.sub } : { error: 'inactive' }));
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    apiPort = (api.address() as AddressInfo).port;

    const forged = await stranger.sign({ sub: 'mallory@example.test', aud: 'keyway', team: 'agents' });
    subjectTokens.push(forged);
    proxy = await startProxy({
      env: { EXCHANGER: JSON.stringify({ clientId: CLIENT, clientSecret: SECRET }), FORGED_SUBJECT: forged, ROBOT_KEY: `${CANARY}-robot-key` },
      config: {
        grants: {
          api: {
            type: 'token_exchange',
            domains: ['api.example.test'],
            token_endpoint: `${auth.issuer}/token`,
            audience: 'https://api.example.test',
            scope: ['api'],
            secret: 'env:EXCHANGER',
          },
          forged: {
            type: 'token_exchange',
            domains: ['other.example.test'],
            token_endpoint: `${auth.issuer}/token`,
            subject: { secret: 'env:FORGED_SUBJECT' },
            audience: 'https://api.example.test',
            secret: 'env:EXCHANGER',
          },
        },
        agents: { fleet: { grants: ['api', 'forged'] }, robot: { key: 'env:ROBOT_KEY', grants: ['api'] } },
        identities: [{ issuer: IDENTITY_ISSUER, jwks: identity.jwksPath, audience: 'keyway', map: [{ claims: { team: 'agents' }, agent: 'fleet' }] }],
      },
    });
  });

  afterAll(async () => {
    const texts = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')];
    for (const text of texts) {
      expect(findLeak(text, SECRET), 'the client secret in an output').toBeUndefined();
      for (const token of [...issuedTokens, ...subjectTokens]) expect(text.includes(token.slice(-32)), 'a token in an output').toBe(false);
    }
    await proxy?.stop();
    api?.close();
    await auth?.close();
  });

  async function callAs(proxyAuthorization: string, host = 'api.example.test') {
    const client = new ProxyAgent({ uri: proxy.url, token: proxyAuthorization, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const res = await request(`https://${host}:${apiPort}/me`, { dispatcher: client });
      const text = await res.body.text();
      outputs.push(text);
      return { status: res.statusCode, text, code: res.headers['x-keyway-error'] };
    } finally {
      await client.close();
    }
  }

  const asUser = async (sub: string) => {
    const token = await identity.sign({ sub, aud: 'keyway', team: 'agents' });
    subjectTokens.push(token);
    return `Basic ${Buffer.from(`jwt:${token}`).toString('base64')}`;
  };

  it('each end user gets a token of their own, exchanged once and reused; the audit line says on whose behalf', async () => {
    const alice = await asUser('alice@example.test');
    const bob = await asUser('bob@example.test');
    const first = await callAs(alice);
    expect(first.status, first.text).toBe(200);
    expect(JSON.parse(first.text)).toEqual({ sub: 'alice@example.test' });
    const second = await callAs(bob);
    expect(JSON.parse(second.text)).toEqual({ sub: 'bob@example.test' });
    const before = exchanges;
    const again = await callAs(alice);
    expect(JSON.parse(again.text)).toEqual({ sub: 'alice@example.test' });
    expect(exchanges, 'the held token is reused').toBe(before);
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['grant'] === 'api' && l['status'] === 200);
      return found.length >= 3 ? found : undefined;
    }, 'three audit lines');
    expect(lines.map((l) => l['on_behalf_of'])).toEqual(['alice@example.test', 'bob@example.test', 'alice@example.test']);
    expect(lines[0]).toMatchObject({ agent: 'fleet', decision: 'inject', secret_source: 'token_exchange' });
  });

  it('a subject token the authorization server refuses (signed with another key): 502 token_refresh_failed, nothing sent upstream', async () => {
    const alice = await asUser('carol@example.test');
    const calls = apiCalls;
    const refused = await callAs(alice, 'other.example.test');
    expect(apiCalls, 'nothing sent upstream').toBe(calls);
    expect(refused.status, refused.text).toBe(502);
    expect(refused.code).toBe('token_refresh_failed');
    expect(refused.text).toMatch(/invalid_grant/);
  });

  it('an agent that signed in with a key, not an identity token: refused before any exchange', async () => {
    const before = exchanges;
    const calls = apiCalls;
    const robot = await callAs(`Basic ${Buffer.from(`robot:${CANARY}-robot-key`).toString('base64')}`);
    expect(robot.status).toBe(401);
    expect(robot.code).toBe('grant_no_secret');
    expect(robot.text).toMatch(/identity token/);
    expect(exchanges).toBe(before);
    expect(apiCalls).toBe(calls);
  });

  it('a connection kept open across a table rebuild (a store change) still acts for its user', async () => {
    const dave = await asUser('dave@example.test');
    const client = new ProxyAgent({ uri: proxy.url, token: dave, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const first = await request(`https://api.example.test:${apiPort}/me`, { dispatcher: client });
      expect(JSON.parse(await first.body.text())).toEqual({ sub: 'dave@example.test' });
      const reloads = proxy.logs.filter((l) => l.includes('store changed')).length;
      const added = await proxy.cli(
        ['grants', 'add', 'unrelated', '--type', 'bearer', '--domains', 'unrelated.example.test', '--secret-stdin'],
        `${CANARY}-unrelated`,
      );
      outputs.push(added.stdout, added.stderr);
      expect(added.code, added.stderr).toBe(0);
      // The running proxy takes the new grant from the store: its tables are built anew.
      await waitFor(() => proxy.logs.filter((l) => l.includes('store changed')).length > reloads || undefined, 'the tables rebuilt');
      const second = await request(`https://api.example.test:${apiPort}/me`, { dispatcher: client });
      const text = await second.body.text();
      outputs.push(text);
      expect(second.statusCode, text).toBe(200);
      expect(JSON.parse(text)).toEqual({ sub: 'dave@example.test' });
    } finally {
      await client.close();
    }
  });

  it("grants add takes the type's own keys as flags, checked as the config's are", async () => {
    const secret = JSON.stringify({ clientId: CLIENT, clientSecret: SECRET });
    const added = await proxy.cli(
      [
        'grants',
        'add',
        'tx-cli',
        '--type',
        'token_exchange',
        '--domains',
        'tunnel.example.test',
        '--token-endpoint',
        `${auth.issuer}/token`,
        '--audience',
        'https://api.example.test',
        '--scope',
        'api,read',
        '--secret-stdin',
      ],
      secret,
    );
    outputs.push(added.stdout, added.stderr);
    expect(added.code, added.stderr).toBe(0);
    const shown = await proxy.cli(['grants', 'show', 'tx-cli', '--json']);
    outputs.push(shown.stdout);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      type: 'token_exchange',
      inject: expect.stringContaining("exchanged for the agent's identity to https://api.example.test"),
    });
    const missing = await proxy.cli(['grants', 'add', 'tx-none', '--type', 'token_exchange', '--domains', 'tunnel.example.test', '--secret-stdin'], secret);
    const elsewhere = await proxy.cli([
      'grants',
      'add',
      'b',
      '--type',
      'bearer',
      '--domains',
      'tunnel.example.test',
      '--token-endpoint',
      `${auth.issuer}/token`,
    ]);
    outputs.push(missing.stderr, elsewhere.stderr);
    expect([missing.code, elsewhere.code]).toEqual([2, 2]);
    expect(missing.stderr).toMatch(/--token-endpoint: a token_exchange grant needs token_endpoint/);
    // Every type that owns the key is named (token_exchange's among them), however many share it.
    expect(elsewhere.stderr).toMatch(/--token-endpoint is not a bearer grant's \(it belongs to [a-z_ ]+\)/);
    expect(elsewhere.stderr).toMatch(/belongs to [a-z_ ]*\btoken_exchange\b/);
  });
});
