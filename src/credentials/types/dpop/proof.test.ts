import { createHash, generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { DpopNonces, dpopChallengeError, dpopKey, dpopProof, nonceAsked } from './proof.ts';

// DPoP proofs (RFC 9449) checked with jose's own verification against the key the proof embeds;
// proof-server.integration.test.ts has an authorization server that enforces them take them.

describe('dpop: proofs', () => {
  for (const [name, pair] of [
    ['P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['Ed25519', () => generateKeyPairSync('ed25519')],
  ] as const) {
    it(`${name}: a proof carries htm, htu without the query, iat, a unique jti, the nonce and ath; signed by the embedded key`, async () => {
      const key = await dpopKey(pair().privateKey);
      const proof = await dpopProof(key, { method: 'GET', url: 'https://api.example.test/v1/items?limit=2#x', accessToken: 'at-123', nonce: 'n-1' });
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
      expect(protectedHeader.jwk).toEqual(key.jwk);
      expect(protectedHeader.jwk).not.toHaveProperty('d');
      expect(payload).toMatchObject({
        htm: 'GET',
        htu: 'https://api.example.test/v1/items',
        nonce: 'n-1',
        ath: createHash('sha256').update('at-123').digest('base64url'),
      });
      expect(typeof payload.iat).toBe('number');
      const again = await dpopProof(key, { method: 'GET', url: 'https://api.example.test/v1/items' });
      expect((await jwtVerify(again, EmbeddedJWK)).payload.jti).not.toBe(payload.jti);
      // Another key's signature under this key's header does not verify.
      const stranger = await dpopKey(pair().privateKey);
      const forged = `${proof.split('.').slice(0, 2).join('.')}.${(await dpopProof(stranger, { method: 'GET', url: 'https://api.example.test/' })).split('.')[2]}`;
      await expect(jwtVerify(forged, EmbeddedJWK)).rejects.toThrow();
      expect(decodeProtectedHeader(proof).alg).toBe(name === 'P-256' ? 'ES256' : 'EdDSA');
    });
  }

  it('hears a nonce only where a server asks for one, and keeps the newest per origin', () => {
    expect(nonceAsked(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce", algs="ES256"', 'dpop-nonce': 'abc' })).toBe('abc');
    expect(nonceAsked(400, { 'dpop-nonce': 'abc' }, '{"error":"use_dpop_nonce"}')).toBe('abc');
    expect(nonceAsked(401, { 'www-authenticate': 'DPoP error="invalid_token"', 'dpop-nonce': 'abc' })).toBeUndefined();
    expect(nonceAsked(400, { 'dpop-nonce': 'abc' }, '{"error":"invalid_grant"}')).toBeUndefined();
    expect(nonceAsked(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'bad"nonce' })).toBeUndefined();
    const nonces = new DpopNonces();
    nonces.heard('https://a.example.test/token', { 'dpop-nonce': 'one' });
    nonces.heard('https://a.example.test/other', { 'dpop-nonce': 'two' });
    expect(nonces.get('https://a.example.test/x')).toBe('two');
    expect(nonces.get('https://b.example.test/x')).toBeUndefined();
  });

  it("reads the DPoP challenge's error among several challenges and fields, and no other scheme's", () => {
    expect(dpopChallengeError('DPoP error="use_dpop_nonce", error_description="x"')).toBe('use_dpop_nonce');
    expect(dpopChallengeError('Bearer error="invalid_token", DPoP algs="ES256", error="use_dpop_nonce"')).toBe('use_dpop_nonce');
    expect(dpopChallengeError('Bearer error="use_dpop_nonce"')).toBeUndefined();
    expect(dpopChallengeError(['Bearer realm="a"', 'DPoP error=invalid_token'])).toBe('invalid_token');
    expect(dpopChallengeError('DPoP realm="a, b", error="invalid_dpop_proof"')).toBe('invalid_dpop_proof');
    expect(dpopChallengeError(undefined)).toBeUndefined();
  });
});
