import type { Credential } from './material.ts';

const NONE: readonly string[] = [];

/** A key keyway signs with (its signature goes upstream, the key never does): not a token, a password, or mTLS's nothing. */
export type SigningKey = Exclude<Credential, { kind: 'token' | 'basic' | 'none' | 'captured' }>;

export function isSigningKey(credential: Credential): credential is SigningKey {
  return credential.kind !== 'token' && credential.kind !== 'basic' && credential.kind !== 'none' && credential.kind !== 'captured';
}

/**
 * For a key keyway signs with (an AWS key, an HMAC key): the secrets of it that an answer could
 * carry back, for the leak guard to look for (a token's or a password's is the secret itself, as
 * it goes on the request). Kept here, beside the credential types, so the proxy asks what to look
 * for, never which type it holds.
 *
 * An AWS key: its session token (in X-Amz-Security-Token), never the secret access key, of which
 * only a signature is sent; without a session token, nothing. An HMAC key: the passphrase, where a
 * scheme sends one (Coinbase, OKX), and the key itself, in case a scheme's template were written to
 * send it: keyway would rather redact than leak.
 */
export function echoableSecrets(key: SigningKey): readonly string[] {
  if (key.kind === 'aws') return key.sessionToken === undefined ? NONE : [key.sessionToken];
  // A key's token goes upstream as it is (DPoP's Authorization); the key itself never does.
  if (key.kind === 'key') return key.token === undefined ? NONE : [key.token];
  return key.passphrase === undefined ? [key.key] : [key.key, key.passphrase];
}
