import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { httpbis, createVerifier } from 'http-message-signatures';
import { describe, expect, it } from 'vitest';
import { verify as verifyWebBotAuth } from 'web-bot-auth';
import { verifierFromJWK } from 'web-bot-auth/crypto';
import { componentValue, parseComponent, type SignedRequest } from './components.ts';
import { jwkThumbprint, keyDirectory, publicJwk } from './directory.ts';
import { contentDigest, type SignatureAlgorithm, type SignatureFields, signRequest } from './sign.ts';

// RFC 9421 signatures made here, checked by implementations keyway did not write:
// http-message-signatures (the RFC's signature base, Ed25519 and ECDSA P-256) and Cloudflare's
// web-bot-auth (Web Bot Auth: the tag, the key's thumbprint as keyid, Signature-Agent). Each is
// also shown to refuse a signature from another key, and one over a changed request.

const body = Buffer.from('{"hello":"world"}');

function request(extra: Record<string, string> = {}): SignedRequest {
  return {
    method: 'POST',
    scheme: 'https',
    authority: 'api.example.test:8443',
    target: '/v1/items?limit=2',
    headers: { 'content-type': 'application/json', 'content-digest': contentDigest(body), ...extra },
  };
}

function keys(alg: SignatureAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** The request as http-message-signatures reads one. */
function asMessage(req: SignedRequest, headers: Readonly<Record<string, string>> | SignatureFields) {
  return { method: req.method, url: `${req.scheme}://${req.authority}${req.target}`, headers: { ...(req.headers as Record<string, string>), ...headers } };
}

describe('http_signature: RFC 9421 signatures', () => {
  for (const alg of ['ed25519', 'ecdsa-p256-sha256'] as const) {
    it(`${alg}: verified by http-message-signatures, refused with another key and over a changed request`, async () => {
      const { privateKey, publicKey } = keys(alg);
      const other = keys(alg).publicKey;
      const components = ['@method', '@authority', '@path', '@query', 'content-type', 'content-digest'].map(parseComponent);
      const req = request();
      const fields = signRequest(req, { privateKey, alg, keyid: 'test-key' }, { components, expiresIn: 300, nonce: true });
      expect(fields['signature-input']).toMatch(
        /^sig1=\("@method" "@authority" "@path" "@query" "content-type" "content-digest"\);created=\d+;expires=\d+;nonce="[^"]+";keyid="test-key";alg="/,
      );
      const check = (key: KeyObject, message: ReturnType<typeof asMessage>) =>
        httpbis.verifyMessage({ keyLookup: async () => ({ id: 'test-key', algs: [alg], verify: createVerifier(key, alg) }) }, message);
      expect(await check(publicKey, asMessage(req, fields))).toBe(true);
      expect(await check(other, asMessage(req, fields))).toBe(false);
      const changed = asMessage({ ...req, target: '/v1/items?limit=3' }, fields);
      expect(await check(publicKey, changed)).toBe(false);
    });
  }

  it('Web Bot Auth: verified by web-bot-auth with the key from the directory, refused with another', async () => {
    const { privateKey } = keys('ed25519');
    const jwk = publicJwk(privateKey);
    const keyid = jwkThumbprint(jwk);
    expect(keyDirectory([privateKey]).keys).toEqual([{ ...jwk, kid: keyid }]);
    const agent = '"https://signer.example.test"';
    const req = request({ 'signature-agent': agent });
    const fields = signRequest(
      req,
      { privateKey, alg: 'ed25519', keyid },
      { components: ['@authority', 'signature-agent'].map(parseComponent), expiresIn: 60, nonce: true, tag: 'web-bot-auth' },
    );
    const message = new Request(`${req.scheme}://${req.authority}${req.target}`, {
      method: req.method,
      headers: { ...(req.headers as Record<string, string>), ...fields },
    });
    await expect(verifyWebBotAuth(message, await verifierFromJWK(jwk))).resolves.toBeUndefined();
    const stranger = publicJwk(keys('ed25519').privateKey);
    await expect(verifyWebBotAuth(message, await verifierFromJWK(stranger))).rejects.toThrow();
  });

  it('signs one member of a dictionary field, and refuses components it cannot derive', () => {
    const { privateKey } = keys('ed25519');
    const req = request({ 'signature-agent': 'sig1="https://signer.example.test", sig2="https://other.example.test"' });
    const fields = signRequest(req, { privateKey, alg: 'ed25519', keyid: 'k' }, { components: [parseComponent('"signature-agent";key="sig1"')] });
    expect(fields['signature-input']).toMatch(/^sig1=\("signature-agent";key="sig1"\)/);
    expect(() => parseComponent('@status')).toThrow(/derives/);
    expect(() => parseComponent('Content-Type')).toThrow(/lower case/);
    expect(() => signRequest(request(), { privateKey, alg: 'ed25519', keyid: 'k' }, { components: [parseComponent('x-missing')] })).toThrow(
      /no x-missing header/,
    );
  });

  it('writes values as RFC 9421 says: the method as sent, the authority without its default port, a boolean member as ?1, sf anew', () => {
    const req: SignedRequest = {
      method: 'GET',
      scheme: 'https',
      authority: 'API.example.test:443',
      target: '/x',
      headers: { 'example-dict': 'a=1, b, c=(1 2)', 'example-list': 'x,  y', 'example-item': '  "v"' },
    };
    const value = (text: string) => componentValue(req, parseComponent(text));
    expect(value('@authority')).toBe('api.example.test');
    expect(value('@target-uri')).toBe('https://api.example.test/x');
    expect(componentValue({ ...req, authority: 'api.example.test:8443' }, parseComponent('@authority'))).toBe('api.example.test:8443');
    expect(value('"example-dict";key="a"')).toBe('1');
    expect(value('"example-dict";key="b"')).toBe('?1');
    expect(value('"example-dict";key="c"')).toBe('(1 2)');
    expect(value('"example-list";sf')).toBe('x, y');
    expect(value('"example-item";sf')).toBe('"v"');
  });
});
