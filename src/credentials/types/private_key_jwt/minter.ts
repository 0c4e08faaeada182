import { randomUUID } from 'node:crypto';
import { loadJose } from '../../jose.ts';
import type { Minter } from '../../issuing/minter.ts';
import { requestToken } from '../../issuing/token-endpoint.ts';
import { safeOrigin } from '../../issuing/token-post.ts';
import type { AssertionKey } from './key.ts';

// A private_key_jwt grant's tokens: client credentials at the token endpoint, the client proved by
// a JWT signed with its key for this request alone (RFC 7523 2.2, 3): iss and sub the client, aud
// the token endpoint, a unique jti and a one-minute life, so a captured assertion is worth little.
// Kept and minted once per expiry, across processes and replicas, by MintedTokens.

export interface PrivateKeyJwtMint {
  readonly endpoint: string;
  readonly clientId: string;
  readonly keyId: string | undefined;
  readonly key: AssertionKey;
  readonly scopes: readonly string[];
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ASSERTION_LIFETIME_S = 60;

/** The client assertion for one token request. */
export async function clientAssertion(spec: PrivateKeyJwtMint, now: number): Promise<string> {
  const iat = Math.floor(now / 1000);
  const { SignJWT } = await loadJose();
  return new SignJWT({})
    .setProtectedHeader({ alg: spec.key.alg, typ: 'JWT', ...(spec.keyId === undefined ? {} : { kid: spec.keyId }) })
    .setIssuer(spec.clientId)
    .setSubject(spec.clientId)
    .setAudience(spec.endpoint)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + ASSERTION_LIFETIME_S)
    .sign(spec.key.privateKey);
}

export const privateKeyJwtMinter: Minter<PrivateKeyJwtMint> = {
  describe: (spec) => `a token from ${safeOrigin(spec.endpoint)}`,
  // The public key's hash, not the key: a token minted with a key since replaced is not used.
  fingerprint: (spec) => JSON.stringify(['private_key_jwt', spec.endpoint, spec.clientId, spec.keyId ?? '', spec.key.publicHash, spec.scopes.join(' ')]),
  mintBeforeMs: 60_000,
  hint: 'keyway retries with backoff; check client_id, that the server holds the public key (and its key_id), and the scopes',
  async mint(spec, { now, timeoutMs, dispatcher }) {
    const params: Record<string, string> = {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(spec, now),
    };
    if (spec.scopes.length > 0) params['scope'] = spec.scopes.join(' ');
    const tokens = await requestToken(
      // client_id in the body too (RFC 7521 4.2 allows it): some servers look the client up by it before reading the assertion.
      { tokenUrl: spec.endpoint, clientId: spec.clientId, clientSecret: undefined, clientAuth: 'body', bodyFormat: 'form', extraParams: {} },
      params,
      { timeoutMs, dispatcher, now: () => now },
    );
    return { accessToken: tokens.accessToken, expiresAt: tokens.expiresAt ?? now + 3_600_000 };
  },
};
