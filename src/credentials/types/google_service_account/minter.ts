import { createPrivateKey } from 'node:crypto';
import { loadJose } from '../../jose.ts';
import type { GoogleServiceAccountMaterial } from './material.ts';
import type { Minter } from '../../issuing/minter.ts';
import { requestToken } from '../../issuing/token-endpoint.ts';
import { safeOrigin } from '../../issuing/token-post.ts';

// A Google service account's access token (type google_service_account): an RS256 assertion
// signed with the account's key, exchanged at the key's token_uri (the JWT bearer grant, RFC 7523:
// what Google's own libraries do). Kept and minted once per expiry by MintedTokens.

/** What a grant mints with: its key and its config (scopes, subject). */
export interface GoogleMint {
  key: GoogleServiceAccountMaterial;
  scopes: readonly string[];
  subject: string | undefined;
}

const ASSERTION_LIFETIME_S = 3600;

export const googleMinter: Minter<GoogleMint> = {
  describe: (spec) => `a token from ${safeOrigin(spec.key.tokenUri)}`,
  fingerprint: (spec) =>
    JSON.stringify(['google', spec.key.clientEmail, spec.key.privateKeyId ?? '', spec.key.tokenUri, spec.scopes.join(' '), spec.subject ?? '']),
  // Google's tokens live an hour; the next is minted 5 minutes before, as its libraries do.
  mintBeforeMs: 5 * 60_000,
  hint: "keyway retries with backoff; check the service account's key, its scopes and subject",
  async mint(spec, { now, timeoutMs, dispatcher }) {
    const iat = Math.floor(now / 1000);
    const { SignJWT } = await loadJose();
    const assertion = new SignJWT({ scope: spec.scopes.join(' ') })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(spec.key.privateKeyId ? { kid: spec.key.privateKeyId } : {}) })
      .setIssuer(spec.key.clientEmail)
      .setAudience(spec.key.tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_LIFETIME_S);
    // sub only for domain-wide delegation: the user the account acts as.
    if (spec.subject !== undefined) assertion.setSubject(spec.subject);
    const signed = await assertion.sign(createPrivateKey(spec.key.privateKey));
    const tokens = await requestToken(
      { tokenUrl: spec.key.tokenUri, clientId: undefined, clientSecret: undefined, clientAuth: 'body', bodyFormat: 'form', extraParams: {} },
      { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signed },
      { timeoutMs, dispatcher, now: () => now },
    );
    return { accessToken: tokens.accessToken, expiresAt: tokens.expiresAt ?? now + 3_600_000 };
  },
};
