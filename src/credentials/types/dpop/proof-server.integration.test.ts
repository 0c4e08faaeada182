import { generateKeyPairSync } from 'node:crypto';
import { type OidcServer, startDpopServer } from '../../../../test/helpers/oidc-server.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopKey, dpopProof, nonceAsked } from './proof.ts';

// keyway's DPoP proofs (src/credentials/types/dpop/) against an authorization server that enforces
// DPoP (oidc-provider: a client whose tokens must be bound, a nonce required): the first proof is
// answered use_dpop_nonce with the server's nonce, the retry with it gets a DPoP-bound token whose
// cnf.jkt is keyway's key, and a proof replayed or for another URL is refused.

const CLIENT = 'dpop-client';
const SECRET = 'dpop-client-secret-5e1f';
let issuer: string;
let server: OidcServer;

beforeAll(async () => {
  server = await startDpopServer({ id: CLIENT, secret: SECRET });
  issuer = server.issuer;
});

afterAll(async () => {
  await server?.close();
});

const basic = `Basic ${Buffer.from(`${CLIENT}:${SECRET}`).toString('base64')}`;

async function tokenCall(proof: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
    body: 'grant_type=client_credentials&scope=api',
  });
  return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
}

describe('DPoP proofs at an enforcing authorization server', () => {
  it('a nonce is asked for, the retry with it gets a token bound to the key, and a replayed or misdirected proof is refused', async () => {
    const key = await dpopKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const first = await tokenCall(await dpopProof(key, { method: 'POST', url: `${issuer}/token` }));
    expect(first.status).toBe(400);
    const nonce = nonceAsked(first.status, first.headers, first.body);
    expect(nonce).toBeDefined();

    const proof = await dpopProof(key, { method: 'POST', url: `${issuer}/token`, nonce });
    const second = await tokenCall(proof);
    expect(second.status).toBe(200);
    const token = JSON.parse(second.body) as { access_token: string; token_type: string };
    expect(token.token_type).toBe('DPoP');
    const introspected = await fetch(`${issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: token.access_token }).toString(),
    });
    const facts = (await introspected.json()) as { active: boolean; cnf?: { jkt?: string } };
    expect(facts.active).toBe(true);
    expect(facts.cnf?.jkt).toBe(key.thumbprint);

    // The same proof again (a replay), and a proof made for another URL: refused.
    expect((await tokenCall(proof)).status).toBe(400);
    expect((await tokenCall(await dpopProof(key, { method: 'POST', url: `${issuer}/elsewhere`, nonce }))).status).toBe(400);
  });
});
