import { type CryptoKey, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import type Provider from 'oidc-provider';
import { type OidcServer, startOidcServer } from '../../../../test/helpers/oidc-server.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeForm, ExchangeRefused, readExchanged, subjectOf, TOKEN_TYPES } from './exchange.ts';
import { ExchangedTokens } from './exchanged-tokens.ts';

// keyway's RFC 8693 token exchange (src/credentials/types/token_exchange/) against oidc-provider
// with a token-exchange grant registered on it: the grant checks the subject token's signature
// against the identity issuer's key (and refuses one signed with another), and issues an access
// token for the audience acting for the subject. Tokens are cached per subject and audience.

const CLIENT = 'exchanger';
const SECRET = 'exchanger-secret-8d2c';
let issuer: string;
let server: OidcServer;
let identityPublic: CryptoKey;
let identityKey: CryptoKey;
let strangerKey: CryptoKey;
let exchanges = 0;

async function subjectToken(sub: string, key: CryptoKey = identityKey): Promise<string> {
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://identity.example.test')
    .setAudience('exchanger')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

beforeAll(async () => {
  const identity = await generateKeyPair('ES256');
  identityKey = identity.privateKey;
  identityPublic = identity.publicKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey;
  const exchangeGrant = (provider: Provider): void => {
    provider.registerGrantType('urn:ietf:params:oauth:grant-type:token-exchange', handler, [...parameters]);
  };
  server = await startOidcServer(
    {
      clients: [
        {
          client_id: CLIENT,
          client_secret: SECRET,
          grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      features: { introspection: { enabled: true, allowedPolicy: async () => true } },
      scopes: ['api'],
    },
    exchangeGrant,
  );
  issuer = server.issuer;
});

const parameters = new Set(['subject_token', 'subject_token_type', 'audience', 'resource', 'scope', 'requested_token_type', 'actor_token', 'actor_token_type']);
/** The token-exchange grant: the subject token checked against the identity issuer's key, a token for its subject issued. */
async function handler(ctx: Parameters<Parameters<Provider['registerGrantType']>[1]>[0]): Promise<void> {
  exchanges++;
  const params = ctx.oidc.params as Record<string, string | undefined>;
  let sub: string;
  try {
    const verified = await jwtVerify(params['subject_token'] ?? '', identityPublic, { issuer: 'https://identity.example.test', audience: 'exchanger' });
    sub = String(verified.payload.sub);
  } catch {
    ctx.status = 400;
    ctx.body = { error: 'invalid_grant', error_description: 'the subject token does not verify' };
    return;
  }
  const client = ctx.oidc.client!;
  const grant = new ctx.oidc.provider.Grant({ accountId: sub, clientId: client.clientId });
  grant.addOIDCScope('api');
  const grantId = await grant.save();
  const token = new ctx.oidc.provider.AccessToken({ accountId: sub, client, grantId, scope: 'api', gty: 'token-exchange' });
  ctx.body = {
    access_token: await token.save(),
    issued_token_type: TOKEN_TYPES.access_token,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: 'api',
  };
}

afterAll(async () => {
  await server?.close();
});

const basic = `Basic ${Buffer.from(`${CLIENT}:${SECRET}`).toString('base64')}`;

async function post(form: URLSearchParams): Promise<{ status: number; body: string }> {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  return { status: response.status, body: await response.text() };
}

async function introspect(token: string): Promise<{ active: boolean; sub?: string }> {
  const response = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return (await response.json()) as { active: boolean; sub?: string };
}

describe('token exchange at an authorization server that checks the subject token', () => {
  it('gives a token acting for the subject, refuses a subject token signed by another key, and caches per subject and audience', async () => {
    const tokens = new ExchangedTokens(async (request) => {
      const answer = await post(exchangeForm(request));
      return readExchanged(answer.status, answer.body);
    });
    const alice = await subjectToken('alice@example.test');
    expect(subjectOf(alice)).toBe('alice@example.test');
    const request = { subjectToken: alice, subjectTokenType: TOKEN_TYPES.jwt, audience: ['https://api.example.test'], scope: ['api'] };
    const first = await tokens.get(request);
    expect(first.exchanged).toBe(true);
    expect(await introspect(first.token.accessToken)).toMatchObject({ active: true, sub: 'alice@example.test' });
    // Cached for the same subject and audience; several at once cost one exchange.
    const before = exchanges;
    const [a, b] = await Promise.all([tokens.get(request), tokens.get(request)]);
    expect(a.token.accessToken).toBe(first.token.accessToken);
    expect(b.token.accessToken).toBe(first.token.accessToken);
    expect(exchanges).toBe(before);
    // Another subject: its own token.
    const bob = await tokens.get({ ...request, subjectToken: await subjectToken('bob@example.test') });
    expect(bob.exchanged).toBe(true);
    expect(await introspect(bob.token.accessToken)).toMatchObject({ active: true, sub: 'bob@example.test' });
    // A subject token signed with another key: refused by the server, nothing cached.
    const forged = { ...request, subjectToken: await subjectToken('mallory@example.test', strangerKey) };
    const refused = await tokens.get(forged).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ExchangeRefused);
    expect((refused as ExchangeRefused).error).toBe('invalid_grant');
    expect((refused as Error).message).not.toContain(forged.subjectToken);
  });
});
