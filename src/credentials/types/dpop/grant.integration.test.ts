// dpop through keyway (RFC 9449): oidc-provider issues DPoP-bound tokens (a nonce required at its
// token endpoint) and a loopback API enforces DPoP as a resource server: every request needs
// `Authorization: DPoP`, a proof signed by the key the token is bound to (cnf.jkt, by
// introspection) for this method and URL with the token's hash, never seen before, and the API's
// current nonce (else 401 use_dpop_nonce). The API is shown to refuse a bound token proved with
// another key; through keyway, the first request is retried once with the nonce, later ones not.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../../../../test/helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { type OidcServer, startDpopServer } from '../../../../test/helpers/oidc-server.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';
import { dpopKey, dpopProof, nonceAsked } from './proof.ts';

const CLIENT = 'dpop-agent-client';
const SECRET = `${CANARY}-dpop-client-secret`;
const basic = `Basic ${Buffer.from(`${CLIENT}:${SECRET}`).toString('base64')}`;

describe('dpop grants: DPoP-bound tokens, a proof per request, the nonce retry', () => {
  let auth: OidcServer;
  let api: Server;
  let port = 0;
  let proxy: TestProxy;
  let client: ProxyAgent;
  const apiNonce = randomBytes(16).toString('base64url');
  const seenJti = new Set<string>();
  /** Tokens the API no longer takes (as if revoked); `revokeNext` revokes the next one it sees. */
  const revoked = new Set<string>();
  const thumbprints: string[] = [];
  let revokeNext = false;
  const seenTokens: string[] = [];
  const verdicts: Array<{ status: number; why: string; body: string }> = [];
  const outputs: string[] = [];

  async function introspect(token: string): Promise<{ active: boolean; cnf?: { jkt?: string }; client_id?: string }> {
    const answer = await fetch(`${auth.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    return (await answer.json()) as { active: boolean; cnf?: { jkt?: string } };
  }

  /** The resource server's judgement of one request: 200, or 401 with why. */
  async function judge(
    method: string,
    url: string,
    authorization: string | undefined,
    proof: string | undefined,
  ): Promise<{ status: number; why: string; headers: Record<string, string> }> {
    const refuse = (why: string, error = 'invalid_token') => ({
      status: 401,
      why,
      headers: { 'www-authenticate': `DPoP error="${error}"`, 'dpop-nonce': apiNonce },
    });
    if (!authorization?.startsWith('DPoP ') || proof === undefined) return refuse('no DPoP token and proof');
    const token = authorization.slice(5);
    seenTokens.push(token);
    let claims: Record<string, unknown>;
    let jwk: Record<string, unknown>;
    try {
      const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', maxTokenAge: '60s' });
      claims = verified.payload;
      jwk = verified.protectedHeader.jwk as Record<string, unknown>;
    } catch (err) {
      return refuse(`proof: ${(err as Error).message}`, 'invalid_dpop_proof');
    }
    const target = new URL(url);
    if (claims['htm'] !== method || claims['htu'] !== `${target.origin}${target.pathname}`) return refuse('proof for another request', 'invalid_dpop_proof');
    if (claims['ath'] !== createHash('sha256').update(token).digest('base64url')) return refuse('proof for another token', 'invalid_dpop_proof');
    if (seenJti.has(String(claims['jti']))) return refuse('a proof seen before', 'invalid_dpop_proof');
    seenJti.add(String(claims['jti']));
    if (claims['nonce'] !== apiNonce) return refuse('no nonce, or an old one', 'use_dpop_nonce');
    if (target.pathname === '/refuse-proof') return refuse('proof refused', 'invalid_dpop_proof');
    const facts = await introspect(token);
    if (!facts.active) return refuse('inactive token');
    if (facts.cnf?.jkt !== (await calculateJwkThumbprint(jwk))) return refuse('token bound to another key');
    thumbprints.push(facts.cnf.jkt);
    if (revokeNext) {
      revokeNext = false;
      revoked.add(token);
    }
    if (revoked.has(token)) return refuse('revoked token');
    return { status: 200, why: 'bound and proved', headers: { 'dpop-nonce': apiNonce } };
  }

  beforeAll(async () => {
    auth = await startDpopServer({ id: CLIENT, secret: SECRET });
    api = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const url = `https://${req.headers.host}${req.url}`;
        const verdict = await judge(req.method!, url, req.headers.authorization, req.headers.dpop as string | undefined);
        const body = Buffer.concat(chunks).toString();
        verdicts.push({ status: verdict.status, why: verdict.why, body });
        res.writeHead(verdict.status, { 'content-type': 'application/json', ...verdict.headers }).end(JSON.stringify({ why: verdict.why, body }));
      });
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    port = (api.address() as AddressInfo).port;
    proxy = await startProxy({
      env: { DPOP_CLIENT: JSON.stringify({ clientId: CLIENT, clientSecret: SECRET }) },
      config: {
        grants: {
          api: { type: 'dpop', domains: ['api.example.test'], token_endpoint: `${auth.issuer}/token`, scopes: ['api'], secret: 'env:DPOP_CLIENT' },
          eddsa: {
            type: 'dpop',
            domains: ['other.example.test'],
            token_endpoint: `${auth.issuer}/token`,
            dpop: { alg: 'EdDSA' },
            scopes: ['api'],
            secret: 'env:DPOP_CLIENT',
          },
        },
      },
    });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    const texts = [...outputs, ...proxy.logs, readFileSync(proxy.auditPath, 'utf8')];
    for (const text of texts) {
      expect(findLeak(text, SECRET), 'the client secret in an output').toBeUndefined();
      for (const token of seenTokens) expect(text.includes(token), 'a bound token in an output').toBe(false);
      // No private key, in any form keyway holds one (a JWK's d, PEM, PKCS#8 DER in base64).
      expect(text).not.toMatch(/"d"\s*:|PRIVATE KEY|MC4CAQAwBQYDK2Vw|MIGHAgEAMBMGByqGSM49/);
    }
    await proxy?.stop();
    api?.close();
    await auth?.close();
  });

  it('the resource server refuses a bound token proved with another key, and accepts the right one (the check bites)', async () => {
    const key = await dpopKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const other = await dpopKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const tokenCall = async (nonce?: string) =>
      fetch(`${auth.issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: basic,
          'content-type': 'application/x-www-form-urlencoded',
          dpop: await dpopProof(key, { method: 'POST', url: `${auth.issuer}/token`, nonce }),
        },
        body: 'grant_type=client_credentials&scope=api',
      });
    const first = await tokenCall();
    const nonce = nonceAsked(first.status, Object.fromEntries(first.headers), await first.text());
    const { access_token: token } = (await (await tokenCall(nonce)).json()) as { access_token: string };
    const url = `https://api.example.test:${port}/me`;
    const wrong = await judge('GET', url, `DPoP ${token}`, await dpopProof(other, { method: 'GET', url, accessToken: token, nonce: apiNonce }));
    expect(wrong).toMatchObject({ status: 401, why: 'token bound to another key' });
    const right = await judge('GET', url, `DPoP ${token}`, await dpopProof(key, { method: 'GET', url, accessToken: token, nonce: apiNonce }));
    expect(right.status).toBe(200);
    const stale = await judge('GET', url, `DPoP ${token}`, await dpopProof(key, { method: 'GET', url, accessToken: token }));
    expect(stale).toMatchObject({ status: 401, why: 'no nonce, or an old one' });
  });

  for (const [grant, host] of [
    ['api', 'api.example.test'],
    ['eddsa', 'other.example.test'],
  ] as const) {
    it(`${grant}: the first request is retried once with the API's nonce and accepted; the next goes through at once`, async () => {
      const before = verdicts.length;
      const first = await request(`https://${host}:${port}/me?page=1`, {
        dispatcher: client,
        headers: { authorization: 'Bearer agent-placeholder', dpop: 'forged' },
      });
      const text = await first.body.text();
      outputs.push(text);
      expect(first.statusCode, text).toBe(200);
      expect(verdicts.slice(before).map((v) => v.why)).toEqual(['no nonce, or an old one', 'bound and proved']);
      const line = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === grant && l['status'] === 200), 'the audit line');
      expect(line).toMatchObject({ signed: 'dpop', secret_source: 'dpop', replayed: true });
      const mid = verdicts.length;
      const post = await request(`https://${host}:${port}/items`, {
        dispatcher: client,
        method: 'POST',
        body: '{"n":1}',
        headers: { 'content-type': 'application/json' },
      });
      outputs.push(await post.body.text());
      expect(post.statusCode).toBe(200);
      expect(verdicts.slice(mid)).toEqual([{ status: 200, why: 'bound and proved', body: '{"n":1}' }]);
    });
  }

  it('a token the API stops taking (invalid_token): keyway gets a new one, bound to a new key, and replays once', async () => {
    revokeNext = true;
    const before = verdicts.length;
    const res = await request(`https://api.example.test:${port}/me`, { dispatcher: client });
    outputs.push(await res.body.text());
    expect(res.statusCode).toBe(200);
    expect(verdicts.slice(before).map((v) => v.why)).toEqual(['revoked token', 'bound and proved']);
    // The new token came with a key of its own.
    expect(new Set(thumbprints.slice(-2)).size).toBe(2);
    const line = await waitFor(() => proxy.auditLines().findLast((l) => l['grant'] === 'api' && l['status'] === 200 && l['path'] === '/me'), 'the audit line');
    expect(line).toMatchObject({ refreshed: true, replayed: true, signed: 'dpop' });
  });

  it('a 401 for any other reason (a proof the API refused): passed on as it came, the request sent once', async () => {
    const before = verdicts.length;
    const res = await request(`https://api.example.test:${port}/refuse-proof`, { dispatcher: client, method: 'POST', body: '{"n":2}' });
    const text = await res.body.text();
    outputs.push(text);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('DPoP error="invalid_dpop_proof"');
    expect(verdicts.slice(before).map((v) => v.why)).toEqual(['proof refused']);
  });
});
