import { describe, expect, it } from 'vitest';
import { exchangeForm, type ExchangeRefused, NO_EXPIRY_MS, readExchanged, subjectOf, TOKEN_EXCHANGE_GRANT, TOKEN_TYPES } from './exchange.ts';
import { ExchangedTokens } from './exchanged-tokens.ts';

// The RFC 8693 request and answer, and the cache's clock; core.integration.test.ts
// runs them against an authorization server that checks the subject token.

describe('token_exchange: the request, the answer, the cache', () => {
  it('posts every parameter the RFC names, and reads the answer or the refusal without quoting a token', () => {
    const form = exchangeForm({
      subjectToken: 's',
      subjectTokenType: TOKEN_TYPES.jwt,
      audience: ['a1', 'a2'],
      scope: ['read', 'write'],
      requestedTokenType: TOKEN_TYPES.access_token,
      actorToken: 'act',
    });
    expect([...form]).toEqual([
      ['grant_type', TOKEN_EXCHANGE_GRANT],
      ['subject_token', 's'],
      ['subject_token_type', TOKEN_TYPES.jwt],
      ['audience', 'a1'],
      ['audience', 'a2'],
      ['scope', 'read write'],
      ['requested_token_type', TOKEN_TYPES.access_token],
      ['actor_token', 'act'],
      ['actor_token_type', TOKEN_TYPES.access_token],
    ]);
    expect(readExchanged(200, `{"access_token":"t","token_type":"Bearer","expires_in":60,"issued_token_type":"${TOKEN_TYPES.jwt}"}`, 1_000)).toMatchObject({
      accessToken: 't',
      expiresAt: 61_000,
      issuedTokenType: TOKEN_TYPES.jwt,
    });
    // No expires_in: held five minutes at most. Not a bearer access token: refused, not sent as one.
    expect(readExchanged(200, '{"access_token":"t","token_type":"bearer"}', 1_000).expiresAt).toBe(1_000 + NO_EXPIRY_MS);
    expect(() => readExchanged(200, '{"access_token":"t","token_type":"N_A"}')).toThrow(/not a bearer token/);
    expect(() => readExchanged(200, '{"access_token":"t","token_type":"DPoP"}')).toThrow(/not a bearer token/);
    expect(() => readExchanged(200, `{"access_token":"t","token_type":"Bearer","issued_token_type":"${TOKEN_TYPES.refresh_token}"}`)).toThrow(
      /not an access token/,
    );
    const refused = (() => {
      try {
        readExchanged(400, '{"error":"invalid_target","error_description":"no such audience"}');
        return undefined;
      } catch (err) {
        return err as ExchangeRefused;
      }
    })();
    expect(refused?.error).toBe('invalid_target');
    expect(() => readExchanged(200, '{"token_type":"Bearer"}')).toThrow(/no access_token/);
    expect(subjectOf('x.eyJzdWIiOiJ1c2VyLTEifQ.y')).toBe('user-1');
    expect(subjectOf('opaque')).toBeUndefined();
  });

  it('keeps a token until a skew before its expiry, and exchanges again after', async () => {
    let now = 0;
    let calls = 0;
    const tokens = new ExchangedTokens(
      async () => {
        calls++;
        return { accessToken: `t${calls}`, issuedTokenType: TOKEN_TYPES.access_token, tokenType: 'Bearer', expiresAt: now + 120_000, scope: undefined };
      },
      { now: () => now, skewMs: 60_000 },
    );
    const request = { subjectToken: 's', subjectTokenType: TOKEN_TYPES.jwt, audience: ['a'] };
    expect((await tokens.get(request)).token.accessToken).toBe('t1');
    now = 59_000;
    expect((await tokens.get(request)).token.accessToken).toBe('t1');
    now = 61_000;
    expect((await tokens.get(request)).token.accessToken).toBe('t2');
    expect((await tokens.afterRejection(request, 't2', 30_000)).token.accessToken).toBe('t3');
    expect((await tokens.get({ ...request, audience: ['b'] })).token.accessToken).toBe('t4');
  });

  it('after a 401, exchanges again at most once per renew floor per subject; a token exchanged since will do', async () => {
    let now = 0;
    let calls = 0;
    const tokens = new ExchangedTokens(
      async () => {
        calls++;
        return { accessToken: `t${calls}`, issuedTokenType: TOKEN_TYPES.access_token, tokenType: 'Bearer', expiresAt: now + 3_600_000, scope: undefined };
      },
      { now: () => now },
    );
    const alice = { subjectToken: 'alice', subjectTokenType: TOKEN_TYPES.jwt, audience: ['a'] };
    const bob = { ...alice, subjectToken: 'bob' };
    expect((await tokens.get(alice)).token.accessToken).toBe('t1');
    expect(await tokens.afterRejection(alice, 't1', 30_000)).toMatchObject({ token: { accessToken: 't2' }, exchanged: true });
    // A request refused with the first token meanwhile: the second, no exchange.
    expect(await tokens.afterRejection(alice, 't1', 30_000)).toEqual({ token: expect.objectContaining({ accessToken: 't2' }), exchanged: false });
    now = 29_000;
    expect(await tokens.afterRejection(alice, 't2', 30_000)).toMatchObject({ token: { accessToken: 't2' }, floored: true });
    // Another subject's floor is its own.
    expect((await tokens.get(bob)).token.accessToken).toBe('t3');
    expect(await tokens.afterRejection(bob, 't3', 30_000)).toMatchObject({ token: { accessToken: 't4' }, exchanged: true });
    now = 30_000;
    expect(await tokens.afterRejection(alice, 't2', 30_000)).toMatchObject({ token: { accessToken: 't5' }, exchanged: true });
    expect(calls).toBe(5);
  });
});
