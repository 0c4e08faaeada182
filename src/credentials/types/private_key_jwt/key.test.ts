import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assertionKeyOf, heldKey, SHAPE } from './key.ts';

// The keys a private_key_jwt grant signs its assertions with: RSA of 2048 bits or more (RS256) and
// P-256 (ES256); a weaker RSA key, another curve or another kind is refused as the secret's shape.

const pem = (pair: { privateKey: KeyObject }) => pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

describe('private_key_jwt keys', () => {
  it('signs RS256 with an RSA key of 2048 bits and ES256 with a P-256 key, and keys a token by the public half', () => {
    const rsa = assertionKeyOf(pem(generateKeyPairSync('rsa', { modulusLength: 2048 })));
    const ec = assertionKeyOf(pem(generateKeyPairSync('ec', { namedCurve: 'P-256' })));
    expect([rsa.alg, ec.alg]).toEqual(['RS256', 'ES256']);
    expect(rsa.publicHash).toMatch(/^[\w-]{43}$/);
    expect(rsa.publicHash).not.toBe(ec.publicHash);
  });

  it('refuses RSA under 2048 bits, P-384, Ed25519 and text that is no key, naming the forms it takes', () => {
    const refused = [
      pem(generateKeyPairSync('rsa', { modulusLength: 1024 })),
      pem(generateKeyPairSync('ec', { namedCurve: 'P-384' })),
      pem(generateKeyPairSync('ed25519')),
      'not a key',
    ];
    for (const text of refused) {
      expect(() => assertionKeyOf(text)).toThrow(SHAPE);
      expect(heldKey(text)).toBeUndefined();
    }
  });
});
