import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { KeywayError } from '../../../errors/index.ts';

// A private_key_jwt grant's secret: the client's private key, a PEM, that signs its assertions.
// RSA (2048 bits or more) signs RS256, ECDSA on P-256 ES256: the two every server that takes
// private_key_jwt accepts. Refusals name the forms, never the text given.

export const SHAPE = 'a private_key_jwt secret is a PEM private key (RSA of 2048 bits or more, or ECDSA on P-256)';

export interface AssertionKey {
  readonly privateKey: KeyObject;
  readonly alg: 'RS256' | 'ES256';
  /** SHA-256 of the public key (SPKI, base64url): what a held token was minted with, never the key. */
  readonly publicHash: string;
}

/** The key a PEM is, checked to be one keyway signs assertions with; throws SHAPE. */
export function assertionKeyOf(pem: string): AssertionKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new KeywayError('usage', SHAPE);
  }
  const details = privateKey.asymmetricKeyDetails;
  const rsa = privateKey.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048;
  const p256 = privateKey.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1';
  if (!rsa && !p256) throw new KeywayError('usage', SHAPE);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, alg: rsa ? 'RS256' : 'ES256', publicHash: createHash('sha256').update(spki).digest('base64url') };
}

// Parsed once per key, not per request: a PEM parse costs more than the lookup of a held token.
const parsed = new LRUCache<string, AssertionKey>({ max: 64 });

/** The key held material is, or undefined when it is not one (material stored before it was checked). */
export function heldKey(material: unknown): AssertionKey | undefined {
  if (typeof material !== 'string') return undefined;
  let key = parsed.get(material);
  if (key === undefined) {
    try {
      key = assertionKeyOf(material);
    } catch {
      return undefined;
    }
    parsed.set(material, key);
  }
  return key;
}
