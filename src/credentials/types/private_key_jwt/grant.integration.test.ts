// private_key_jwt grants end to end (RFC 7523 2.2): a loopback token endpoint that verifies each
// client assertion with the client's public key (jose: signature, alg, iss and sub the client, aud
// itself, exp, iat, a jti never seen before, a life of 5 minutes at most) and refuses one signed
// with another key; oidc-provider as a second, independent judge; an API that takes only the
// token minted last. The private keys and the tokens are canaries searched for in every output.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, jwtVerify } from 'jose';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../../../../test/helpers/clients.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { type OidcServer, startOidcServer } from '../../../../test/helpers/oidc-server.ts';
import { startUpstream, type TestUpstream } from '../../../../test/helpers/upstream.ts';
import { waitFor, waitForAsync } from '../../../../test/helpers/wait.ts';

const pair = (kind: 'rsa' | 'ec') => {
  const { privateKey, publicKey } = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey };
};
const RSA = pair('rsa');
const EC = pair('ec');
// The EC client's next key, registered beside the first: a grant given it mints anew.
const EC_NEXT = pair('ec');
// A key no server holds: its assertions must be refused.
const STRANGER = pair('rsa');
/** The clients the token endpoint knows, by client_id: the public keys it verifies their assertions with. */
const CLIENTS: Record<string, KeyObject[]> = { 'ledger-rsa': [RSA.publicKey], 'ledger-ec': [EC.publicKey, EC_NEXT.publicKey] };
const MINUTE = 60_000;

interface Mint {
  client: string;
  alg: string;
  kid: string | undefined;
  lifetime: number;
  scope: string | null;
}

describe('private_key_jwt: tokens minted with a client assertion keyway signs, once per expiry', () => {
  let upstream: TestUpstream;
  let oidc: OidcServer;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  let ahead = 0;
  const clock = () => Date.now() + ahead;
  const mints: Mint[] = [];
  const refused: string[] = [];
  const jtis = new Set<string>();
  /** The public key each mint's assertion was verified with. */
  const verifiedWith: KeyObject[] = [];
  const issued: string[] = [];
  const outputs: string[] = [];
  let tokenUrl = '';

  async function verify(form: URLSearchParams): Promise<Mint> {
    if (form.get('grant_type') !== 'client_credentials') throw new Error('grant_type');
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') throw new Error('client_assertion_type');
    const client = form.get('client_id') ?? '';
    const keys = CLIENTS[client];
    if (keys === undefined) throw new Error('unknown client');
    const assertion = form.get('client_assertion') ?? '';
    const options = {
      issuer: client,
      subject: client,
      audience: tokenUrl,
      algorithms: ['RS256', 'ES256'],
      requiredClaims: ['jti', 'exp', 'iat'],
      currentDate: new Date(clock()),
    };
    // The first of the client's keys that verifies it; else the last refusal (a signature that none verifies).
    let verified: Awaited<ReturnType<typeof jwtVerify>> | undefined;
    let refusal: unknown;
    for (const key of keys) {
      verified = await jwtVerify(assertion, key, options).catch((err: unknown) => {
        refusal = err;
        return undefined;
      });
      if (verified !== undefined) {
        verifiedWith.push(key);
        break;
      }
    }
    if (verified === undefined) throw refusal;
    const { payload, protectedHeader } = verified;
    const lifetime = payload.exp! - payload.iat!;
    if (lifetime > 300) throw new Error('lifetime');
    if (jtis.has(payload.jti!)) throw new Error('a jti seen before');
    jtis.add(payload.jti!);
    return {
      client,
      alg: protectedHeader.alg,
      kid: protectedHeader.kid,
      lifetime,
      scope: form.get('scope'),
    };
  }

  /** The token endpoint, as far as client credentials with private_key_jwt go; and an API that wants its tokens. */
  function handler(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): boolean {
    const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.url === '/token') {
      verify(new URLSearchParams(body?.toString() ?? '')).then(
        (mint) => {
          mints.push(mint);
          const token = `at.${CANARY}-minted-${mints.length}`;
          issued.push(token);
          json(200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
        },
        (err: Error) => {
          refused.push(err.message);
          json(401, { error: 'invalid_client' });
        },
      );
      return true;
    }
    const ok = issued.length > 0 && req.headers.authorization === `Bearer ${issued.at(-1)}`;
    json(ok ? 200 : 401, { ok });
    return true;
  }

  beforeAll(async () => {
    upstream = await startUpstream({ handler });
    tokenUrl = `https://other.example.test:${upstream.port}/token`;
    const jwk = { ...(await exportJWK(RSA.publicKey)), kid: 'k1', use: 'sig' };
    oidc = await startOidcServer({
      clients: [
        {
          client_id: 'ledger-oidc',
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'RS256',
          jwks: { keys: [jwk] },
        },
      ],
      features: { clientCredentials: { enabled: true } },
      scopes: ['api'],
    });
    const grant = (domain: string, secret: string, client: string, more: Record<string, unknown> = {}) => ({
      type: 'private_key_jwt',
      domains: [domain],
      secret,
      token_endpoint: tokenUrl,
      client_id: client,
      ...more,
    });
    proxy = await startProxy({
      tokenClock: clock,
      env: { RSA_KEY: RSA.pem, EC_KEY: EC.pem, STRANGER_KEY: STRANGER.pem },
      config: {
        grants: {
          ledger: grant('api.example.test', 'env:RSA_KEY', 'ledger-rsa', {
            key_id: 'k1',
            scopes: ['ledger.read', 'ledger.write'],
          }),
          ec: grant('plain.example.test', 'env:EC_KEY', 'ledger-ec'),
          stranger: grant('bad.example.test', 'env:STRANGER_KEY', 'ledger-rsa'),
          conformant: grant('oidc.example.test', 'env:RSA_KEY', 'ledger-oidc', { token_endpoint: `${oidc.issuer}/token`, key_id: 'k1', scopes: ['api'] }),
          'oidc-stranger': grant('oidc-bad.example.test', 'env:STRANGER_KEY', 'ledger-oidc', { token_endpoint: `${oidc.issuer}/token`, scopes: ['api'] }),
        },
      },
    });
    agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') }, connections: 64 });
  });

  afterAll(async () => {
    await agent?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    // Two lines of each key's base64 body: findLeak looks for them in every encoding keyway might write them in.
    const keys = [RSA, EC, EC_NEXT, STRANGER].flatMap(({ pem }) => pem.split('\n').slice(1, 3));
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const secret of [...keys, ...issued]) expect(findLeak(text, secret), 'a secret in an output').toBeUndefined();
    await proxy?.stop();
    await oidc?.close();
    await upstream?.close();
  });

  const call = async (host: string, path = '/ledger') => {
    const res = await request(`https://${host}:${upstream.port}${path}`, { dispatcher: agent, headersTimeout: 30_000 });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };

  it('curl gets through with a token minted from an RS256 assertion the endpoint verified; one mint for several requests', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const r = await curl(['-sS', `https://api.example.test:${upstream.port}/ledger`], env);
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true });
    expect(mints).toEqual([
      {
        client: 'ledger-rsa',
        alg: 'RS256',
        kid: 'k1',
        lifetime: 60,
        scope: 'ledger.read ledger.write',
      },
    ]);
    expect((await call('api.example.test', '/ledger?again')).status).toBe(200);
    expect(mints).toHaveLength(1);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === 'ledger' && l['decision'] === 'inject'), 'the line');
    expect(line).toMatchObject({ secret_source: 'private_key_jwt', refreshed: true, status: 200 });
  });

  it('an EC key signs ES256, with no kid where the grant names none', async () => {
    expect((await call('plain.example.test')).status).toBe(200);
    expect(mints.at(-1)).toMatchObject({ client: 'ledger-ec', alg: 'ES256', kid: undefined, lifetime: 60, scope: null });
  });

  it('100 requests at once when the token is due: one mint with a new jti, all with the new token', async () => {
    ahead += 59.5 * MINUTE; // 30 s left on the ledger's token: due (minted a minute before expiry)
    const before = mints.length;
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => call('api.example.test', `/ledger?i=${i}`)));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(mints.length - before).toBe(1);
    expect(jtis.size).toBe(mints.length);
  });

  it('a key the endpoint does not hold: 502 token_refresh_failed naming the endpoint, refused for its signature, nothing sent to the API', async () => {
    const seen = upstream.seen.length;
    const first = await call('bad.example.test');
    expect(first.status).toBe(502);
    expect(first.code).toBe('token_refresh_failed');
    expect(JSON.parse(first.text).error.message).toMatch(/^grant "stranger" could not get a token from https:\/\/other\.example\.test:\d+: /);
    expect(refused.at(-1)).toMatch(/signature/);
    expect(upstream.seen.slice(seen).map((r) => r.url)).toEqual(['/token']);
  });

  it('oidc-provider, a server keyway did not write, takes its assertion and refuses one signed with another key', async () => {
    const good = await proxy.cli(['refresh', 'conformant', '--json']);
    outputs.push(good.stdout, good.stderr);
    expect(good.code, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ grant: 'conformant', refreshed: true });
    const bad = await proxy.cli(['refresh', 'oidc-stranger']);
    outputs.push(bad.stdout, bad.stderr);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('invalid_client');
  });

  it('grants add takes the PEM on stdin; one that is not a key, or a key it does not sign with, is refused without quoting it', async () => {
    const base = ['grants', 'add', 'pkjwt-store', '--type', 'private_key_jwt', '--domains', 'tunnel.example.test', '--token-endpoint', tokenUrl];
    const noClient = await proxy.cli([...base, '--secret-stdin'], EC.pem);
    expect(noClient.stderr).toContain('--client-id: a private_key_jwt grant needs client_id');
    const withClient = [...base, '--client-id', 'ledger-ec', '--secret-stdin'];
    const notKey = await proxy.cli(withClient, `${CANARY}-not-a-key`);
    const ed25519 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const wrongKind = await proxy.cli(withClient, ed25519);
    for (const r of [notKey, wrongKind]) {
      outputs.push(r.stdout, r.stderr);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('a private_key_jwt secret is a PEM private key (RSA of 2048 bits or more, or ECDSA on P-256)');
    }
    expect(notKey.stderr).not.toContain(CANARY);
    expect(findLeak(wrongKind.stderr, ed25519.split('\n')[1]!)).toBeUndefined();
    const good = await proxy.cli(withClient, EC.pem);
    outputs.push(good.stdout, good.stderr);
    expect(good.code, good.stderr).toBe(0);
    const shown = await proxy.cli(['grants', 'show', 'pkjwt-store', '--json']);
    outputs.push(shown.stdout);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      type: 'private_key_jwt',
      secret: 'set',
      inject: `header Authorization: Bearer {secret} (tokens from ${tokenUrl} as ledger-ec)`,
    });
  });

  it('a grant given a new key mints a new token with it at its next request, not the one the old key got', async () => {
    const before = mints.length;
    expect((await call('tunnel.example.test')).status).toBe(200);
    expect(mints.length - before).toBe(1);
    const set = await proxy.cli(['secrets', 'set', 'pkjwt-store', '--stdin'], EC_NEXT.pem);
    outputs.push(set.stdout, set.stderr);
    expect(set.code, set.stderr).toBe(0);
    // The running proxy reads the store's change within a second: until then it sends the token it holds.
    await waitForAsync(async () => {
      if (mints.length - before === 2) return true;
      await call('tunnel.example.test');
      return undefined;
    }, 'a mint with the new key');
    expect(verifiedWith.at(-1)).toBe(EC_NEXT.publicKey);
    expect((await call('tunnel.example.test')).status).toBe(200);
    expect(mints.length - before).toBe(2);
  });
});
