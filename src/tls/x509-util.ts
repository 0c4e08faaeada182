// Helpers shared by the CA and the leaf minter. For the CA (made once), forge builds the certificate
// structure and OpenSSL (via node:crypto) holds the private key and does the RSA arithmetic, ~25x
// faster than forge's JS; leaves are written as DER without forge (leaf.ts, der.ts).
import { constants, privateEncrypt, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type * as Forge from 'node-forge';
import { forge } from './forge.ts';

// DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017 section 9.2, note 1); the 32-byte digest follows.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * A stand-in for a forge RSA private key. forge's `cert.sign(key, md)` only ever calls `key.sign(md)`,
 * so this object is all it needs; the key material itself never enters forge.
 */
export function opensslSigner(key: KeyObject): Forge.pki.rsa.PrivateKey {
  const signer = {
    sign(md: Forge.md.MessageDigest): string {
      // The DigestInfo prefix above is SHA-256's; forge defaults to SHA-1 if a caller forgets the md.
      if (md.algorithm !== 'sha256') throw new Error(`refusing to sign with ${md.algorithm}; use forge.md.sha256`);
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      const signature = privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest]));
      return signature.toString('binary');
    },
  };
  return signer as unknown as Forge.pki.rsa.PrivateKey;
}

/** 16 random bytes as hex, top bit clear so the INTEGER is positive, second bit set so DER needs no 00 pad. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

export function forgePublicKey(key: KeyObject): Forge.pki.PublicKey {
  return forge.pki.publicKeyFromPem(key.export({ type: 'spki', format: 'pem' }).toString());
}

/** The CA's subjectKeyIdentifier as forge bytes, computed from the key if a foreign CA lacks the extension. */
export function subjectKeyId(cert: Forge.pki.Certificate): string {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  if (ext?.subjectKeyIdentifier) return forge.util.hexToBytes(ext.subjectKeyIdentifier);
  return cert.generateSubjectKeyIdentifier().getBytes();
}

export const HOUR_MS = 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;

/** forge writes CRLF line ends; LF matches Node, OpenSSL and every bundle the PEM is appended to. */
export function certificateToPem(cert: Forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}
