import type { Minter } from '../../issuing/minter.ts';
import { TokenEndpointError } from '../../issuing/token-endpoint.ts';
import { basicClientAuth, postToken, printableErrorCode, safeOrigin } from '../../issuing/token-post.ts';
import { boundKeyOf, newBoundKey } from './key.ts';
import { type DpopAlgorithm, DpopNonces, dpopProof, nonceAsked } from './proof.ts';

// A dpop grant's tokens: client credentials at the token endpoint, each token bound to a new key
// (key.ts) that proves the call; a server that asks for a nonce (400 use_dpop_nonce) is asked once
// more with it. Kept with its key and renewed by MintedTokens (once per expiry across processes
// and replicas).

export interface DpopMint {
  readonly endpoint: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
  readonly alg: DpopAlgorithm;
}

// The nonces token endpoints gave, per origin, for this process.
const tokenEndpointNonces = new DpopNonces();

export const dpopMinter: Minter<DpopMint> = {
  describe: (spec) => `a DPoP-bound token from ${safeOrigin(spec.endpoint)}`,
  fingerprint: (spec) => JSON.stringify(['dpop', spec.endpoint, spec.clientId, spec.scopes.join(' '), spec.alg]),
  mintBeforeMs: 60_000,
  hint: 'keyway retries with backoff; check the client, its scopes, and that the server issues DPoP-bound tokens',
  async mint(spec, { now, timeoutMs, dispatcher }) {
    const boundKey = newBoundKey(spec.alg);
    const key = boundKeyOf(boundKey);
    const where = safeOrigin(spec.endpoint);
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (spec.scopes.length > 0) form.set('scope', spec.scopes.join(' '));
    const call = async (nonce: string | undefined) => {
      const answer = await postToken(
        {
          url: spec.endpoint,
          headers: {
            authorization: basicClientAuth(spec.clientId, spec.clientSecret),
            accept: 'application/json',
            dpop: await dpopProof(key, { method: 'POST', url: spec.endpoint, nonce }, now),
          },
          body: { form },
        },
        { timeoutMs, dispatcher },
        (failure) =>
          failure.kind === 'oversize'
            ? new TokenEndpointError('bad_response', `the token endpoint ${failure.message}`)
            : new TokenEndpointError('unreachable', `the token endpoint ${where} could not be reached`),
      );
      tokenEndpointNonces.heard(spec.endpoint, answer.headers);
      return answer;
    };
    let answer = await call(tokenEndpointNonces.get(spec.endpoint));
    const asked = nonceAsked(answer.status, answer.headers, answer.text);
    if (asked !== undefined) answer = await call(asked);
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {}
    if (answer.status < 200 || answer.status >= 300) {
      const error = typeof parsed['error'] === 'string' ? printableErrorCode(parsed['error']) : undefined;
      throw new TokenEndpointError(
        answer.status >= 500 ? 'server_error' : 'rejected',
        `the token endpoint ${where} refused (${answer.status}${error ? ` ${error}` : ''})`,
        {
          oauthError: error,
          status: answer.status,
        },
      );
    }
    const token = parsed['access_token'];
    if (typeof token !== 'string' || token.trim() === '')
      throw new TokenEndpointError('bad_response', `the token endpoint ${where} answered without an access_token`);
    // A Bearer token is not bound to the key: sent as DPoP it would be refused, and as Bearer it is a token anyone holding it can use.
    if (String(parsed['token_type']).toLowerCase() !== 'dpop') {
      throw new TokenEndpointError('bad_response', `the token endpoint ${where} issued a ${String(parsed['token_type'])} token, not a DPoP-bound one`);
    }
    const expiresIn = Number(parsed['expires_in']);
    return { accessToken: token, expiresAt: now + (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600) * 1000, boundKey };
  },
};
