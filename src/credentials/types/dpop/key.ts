import { createECDH, createHash, createPrivateKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import type { DpopAlgorithm, DpopKey } from './proof.ts';

// The key a dpop grant's tokens are bound to, derived from the grant's client secret (HKDF-SHA256,
// the grant id and algorithm as its info): every replica and every restart holds the same key with
// nothing more to store or share, and a new client secret is a new key (and new tokens). The key
// is as secret as the client secret it comes from, and like it never leaves keyway.

// PKCS#8 for an Ed25519 seed (RFC 8410): the fixed prefix, then the 32 bytes.
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

const derived = new LRUCache<string, DpopKey>({ max: 256 });
const byObject = new WeakMap<KeyObject, DpopKey>();

export function derivedDpopKey(clientSecret: string, grantId: string, alg: DpopAlgorithm): DpopKey {
  const id = createHash('sha256')
    .update(JSON.stringify([clientSecret, grantId, alg]))
    .digest('hex');
  let key = derived.get(id);
  if (key === undefined) {
    key = keyOf(derive(clientSecret, grantId, alg));
    derived.set(id, key);
  }
  return key;
}

function derive(clientSecret: string, grantId: string, alg: DpopAlgorithm): KeyObject {
  for (let counter = 0; ; counter++) {
    const seed = Buffer.from(hkdfSync('sha256', clientSecret, 'keyway dpop key', `${grantId}\0${alg}\0${counter}`, 32));
    if (alg === 'EdDSA') return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
    // A P-256 scalar must be below the group order: a seed past it (odds about 2^-32) takes the next counter.
    try {
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(seed);
      const point = ecdh.getPublicKey();
      return createPrivateKey({
        key: {
          kty: 'EC',
          crv: 'P-256',
          d: seed.toString('base64url'),
          x: point.subarray(1, 33).toString('base64url'),
          y: point.subarray(33).toString('base64url'),
        },
        format: 'jwk',
      });
    } catch {}
  }
}

/** The proof key of a private key: its public JWK and RFC 7638 thumbprint, once per key. */
export function keyOf(privateKey: KeyObject): DpopKey {
  let key = byObject.get(privateKey);
  if (key !== undefined) return key;
  const full = privateKey.export({ format: 'jwk' }) as JWK;
  const okp = full.kty === 'OKP';
  const jwk: JWK = okp ? { kty: 'OKP', crv: full.crv!, x: full.x! } : { kty: 'EC', crv: full.crv!, x: full.x!, y: full.y! };
  const members = okp ? ['crv', 'kty', 'x'] : ['crv', 'kty', 'x', 'y'];
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify((jwk as Record<string, string>)[m])}`).join(',')}}`;
  key = { privateKey, alg: okp ? 'EdDSA' : 'ES256', jwk, thumbprint: createHash('sha256').update(canonical).digest('base64url') };
  byObject.set(privateKey, key);
  return key;
}
