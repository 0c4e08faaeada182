// forge's part in making the bench upstream's certificate (keyway's own CA and leaves are DER: src/tls/der.ts):
// forge builds the certificate structure and OpenSSL (via node:crypto) holds the private key and
// does the RSA arithmetic, ~25x faster than forge's JS.
import { constants, privateEncrypt } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type * as Forge from 'node-forge';
import { forge } from '../src/tls/forge.ts';

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

export function forgePublicKey(key: KeyObject): Forge.pki.PublicKey {
  return forge.pki.publicKeyFromPem(key.export({ type: 'spki', format: 'pem' }).toString());
}

/** forge writes CRLF line ends; LF matches Node, OpenSSL and every bundle the PEM is appended to. */
export function certificateToPem(cert: Forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}
