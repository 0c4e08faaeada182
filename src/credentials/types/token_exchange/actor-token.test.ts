import { decodeJwt, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { ACTOR_TOKEN_TTL_S, priorActors, signActorToken } from './actor-token.ts';
import { TOKEN_TYPES } from './exchange.ts';
import { ExchangedTokens } from './exchanged-tokens.ts';

// A delegated agent's chain as RFC 8693 4.1 nests actors: the current actor the token's `sub`
// (outermost `act` once the endpoint issues), the prior actors nested inward to the root.

const SECRET = 'client-secret-for-actor-tokens';
const ENDPOINT = 'https://auth.example.test/token';

describe('actor tokens', () => {
  it('nest the prior actors nearest first, the root innermost', () => {
    expect(priorActors(['root', 'mid', 'leaf', 'child'])).toEqual({ sub: 'leaf', act: { sub: 'mid', act: { sub: 'root' } } });
    expect(priorActors(['root', 'child'])).toEqual({ sub: 'root' });
    expect(priorActors(['root'])).toBeUndefined();
  });

  it('are signed with the client secret for the endpoint alone, short-lived, each one new', async () => {
    const nowMs = Date.now();
    const token = await signActorToken({ chain: ['lead', 'worker', 'helper'], clientId: 'kw', clientSecret: SECRET, endpoint: ENDPOINT, nowMs });
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(SECRET), { issuer: 'kw', audience: ENDPOINT });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ sub: 'helper', act: { sub: 'worker', act: { sub: 'lead' } } });
    expect(payload.exp! - payload.iat!).toBe(ACTOR_TOKEN_TTL_S);
    await expect(jwtVerify(token, new TextEncoder().encode('another secret'))).rejects.toThrow();
    const again = await signActorToken({ chain: ['lead', 'worker', 'helper'], clientId: 'kw', clientSecret: SECRET, endpoint: ENDPOINT, nowMs });
    expect(decodeJwt(again).jti).not.toBe(payload.jti);
  });

  it('are made for a delegated agent only', async () => {
    await expect(signActorToken({ chain: ['lead'], clientId: 'kw', clientSecret: SECRET, endpoint: ENDPOINT })).rejects.toThrow(/two or more/);
  });

  it('the exchanged-token cache keys on the chain: parent, child and grandchild each their own', () => {
    const request = { subjectToken: 's', subjectTokenType: TOKEN_TYPES.jwt, audience: ['a'] };
    const keys = new Set([
      ExchangedTokens.keyOf(request),
      ExchangedTokens.keyOf({ ...request, actorChain: ['lead', 'worker'] }),
      ExchangedTokens.keyOf({ ...request, actorChain: ['lead', 'worker', 'helper'] }),
      ExchangedTokens.keyOf({ ...request, actorChain: ['other', 'worker'] }),
    ]);
    expect(keys.size).toBe(4);
    expect(ExchangedTokens.keyOf({ ...request, actorChain: ['lead', 'worker'] })).toBe(ExchangedTokens.keyOf({ ...request, actorChain: ['lead', 'worker'] }));
  });
});
