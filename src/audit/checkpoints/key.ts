import { createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';

// The Ed25519 key that signs audit checkpoints. Derived from the master key (HKDF, its own label),
// as the audit head's HMAC key is: every process of a home, every replica sharing a store, and the
// command line have it wherever they can open the store, with no record to create, race on or lose.
// A rotated master key (keyway key rotate) keeps it: the store then holds the seed (and the head's
// key) as they were (open-home.ts, auditKeysOf), so the public key others hold stays right.

/** PKCS #8 DER for an Ed25519 private key: this prefix, then the 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface CheckpointKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The first 16 hex digits of the SHA-256 of the public key (SPKI DER): which key signed a checkpoint. */
  readonly id: string;
}

export function checkpointKeyFrom(masterKey: Buffer): CheckpointKey {
  return checkpointKeyFromSeed(checkpointSeedFrom(masterKey));
}

/** The Ed25519 seed a master key gives (HKDF, its own label). */
export function checkpointSeedFrom(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'keyway audit checkpoint signing v1', 32));
}

export function checkpointKeyFromSeed(seed: Buffer): CheckpointKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, id: keyIdOf(publicKey) };
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** The public key as PEM (`keyway audit public-key`). */
export function publicKeyPem(key: CheckpointKey): string {
  return key.publicKey.export({ type: 'spki', format: 'pem' }) as string;
}

/** A public key read from PEM text: an Ed25519 one, or a one-line reason. */
export function readPublicKey(pem: string): KeyObject | string {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    return 'not a PEM public key';
  }
  return key.asymmetricKeyType === 'ed25519' ? key : `an ${key.asymmetricKeyType} key, not Ed25519`;
}
