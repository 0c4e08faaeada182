import { createHash, randomBytes } from 'node:crypto';

/** RFC 7636: a random verifier and its S256 challenge. */
export function createPkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** An unguessable `state` to tie the callback to this flow (RFC 6749 10.12). */
export function createState(): string {
  return randomBytes(16).toString('base64url');
}
