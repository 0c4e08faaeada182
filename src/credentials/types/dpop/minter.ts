import type { Minter } from '../../issuing/minter.ts';
import { safeOrigin, TokenEndpointError } from '../../issuing/token-endpoint.ts';
import { requestUrl } from '../../../net/undici.ts';
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
    const call = async (nonce: string | undefined) => {
      const basic = Buffer.from(`${encodeURIComponent(spec.clientId)}:${encodeURIComponent(spec.clientSecret)}`).toString('base64');
      const form = new URLSearchParams({ grant_type: 'client_credentials' });
      if (spec.scopes.length > 0) form.set('scope', spec.scopes.join(' '));
      try {
        const response = await requestUrl(spec.endpoint, {
          method: 'POST',
          headers: {
            authorization: `Basic ${basic}`,
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
            dpop: await dpopProof(key, { method: 'POST', url: spec.endpoint, nonce }, now),
          },
          body: form.toString(),
          dispatcher,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const headers = response.headers as Record<string, string | string[] | undefined>;
        tokenEndpointNonces.heard(spec.endpoint, headers);
        return { status: response.statusCode, headers, body: await response.body.text() };
      } catch (err) {
        throw new TokenEndpointError('unreachable', `the token endpoint ${safeOrigin(spec.endpoint)} could not be reached`, { cause: err });
      }
    };
    let answer = await call(tokenEndpointNonces.get(spec.endpoint));
    const asked = nonceAsked(answer.status, answer.headers, answer.body);
    if (asked !== undefined) answer = await call(asked);
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(answer.body) as Record<string, unknown>;
    } catch {}
    const where = safeOrigin(spec.endpoint);
    if (answer.status < 200 || answer.status >= 300) {
      const error = typeof parsed['error'] === 'string' ? parsed['error'].replace(/[^\w.-]/g, '').slice(0, 64) : undefined;
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
