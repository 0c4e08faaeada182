import { createHash, type KeyObject } from 'node:crypto';

// Web Bot Auth: the keyid is the key's JWK thumbprint (RFC 7638), and the public keys are published
// as a JWKS at /.well-known/http-message-signatures-directory, so a site can check who signed.

/** The public JWK of a signing key (never its private part). */
export function publicJwk(privateKey: KeyObject): Record<string, string> {
  const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
  if (jwk['kty'] === 'OKP') return { kty: 'OKP', crv: jwk['crv']!, x: jwk['x']! };
  if (jwk['kty'] === 'EC') return { kty: 'EC', crv: jwk['crv']!, x: jwk['x']!, y: jwk['y']! };
  throw new Error(`a ${jwk['kty']} key is not one keyway signs messages with (Ed25519, P-256)`);
}

/** RFC 7638: SHA-256 over the required members in lexical order, base64url. */
export function jwkThumbprint(jwk: Record<string, string>): string {
  const required = jwk['kty'] === 'OKP' ? ['crv', 'kty', 'x'] : ['crv', 'kty', 'x', 'y'];
  const canonical = `{${required.map((k) => `${JSON.stringify(k)}:${JSON.stringify(jwk[k])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The key directory's document: each key's public JWK with its thumbprint as kid. */
export function keyDirectory(keys: readonly KeyObject[]): { keys: Array<Record<string, string>> } {
  return { keys: keys.map((key) => ({ ...publicJwk(key), kid: jwkThumbprint(publicJwk(key)) })) };
}

/** The directory's media type (draft-meunier-http-message-signatures-directory). */
export const DIRECTORY_MEDIA_TYPE = 'application/http-message-signatures-directory+json';
export const DIRECTORY_PATH = '/.well-known/http-message-signatures-directory';
