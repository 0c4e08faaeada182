import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import type { DpopAlgorithm, DpopKey } from './proof.ts';

// The key a dpop grant's token is bound to: a fresh random one for each token keyway mints
// (minter.ts), kept sealed beside the token in the store (MintedState.boundKey), so every replica
// proves with the same key for as long as the token lives and the next token gets a new one. It
// never leaves keyway: proofs carry its public half only.

/** A new key for `alg`, as PKCS#8 DER in base64 (what the store keeps). */
export function newBoundKey(alg: DpopAlgorithm): string {
  const { privateKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}

// Parsed once per key, not per request.
const parsed = new LRUCache<string, DpopKey>({ max: 256 });

/** The proof key a stored bound key is. */
export function boundKeyOf(stored: string): DpopKey {
  let key = parsed.get(stored);
  if (key === undefined) {
    key = keyOf(createPrivateKey({ key: Buffer.from(stored, 'base64'), format: 'der', type: 'pkcs8' }));
    parsed.set(stored, key);
  }
  return key;
}

const byObject = new WeakMap<KeyObject, DpopKey>();

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
