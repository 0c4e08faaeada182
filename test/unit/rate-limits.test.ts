import { describe, expect, it } from 'vitest';
import { limitsSchema } from '../../src/config/limits.ts';
import { type LimitScope, limitScopes, RateLimiter, secondsToNextDay } from '../../src/policy/rate-limits.ts';

const scope = (key: string, rate: string, burst?: number): LimitScope => ({
  kind: 'agent',
  name: key,
  key,
  limits: limitsSchema.parse({ rate, ...(burst === undefined ? {} : { burst }) }),
});

describe('rate limits: token buckets per scope', () => {
  it('a burst passes at once, then one token per 1/rate; Retry-After is the wait for the next token', () => {
    const limiter = new RateLimiter();
    const bot = scope('bot', '60/min', 3);
    const t0 = 1_000_000;
    expect([1, 2, 3, 4].map(() => limiter.take([bot], t0).ok)).toEqual([true, true, true, false]);
    const refused = limiter.take([bot], t0 + 400);
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 600 });
    expect(limiter.take([bot], t0 + 1_000).ok).toBe(true);
    expect(limiter.take([bot], t0 + 1_000).ok).toBe(false);
    // An idle minute refills to the burst, not past it.
    expect(limiter.remaining(bot, t0 + 61_000)).toBe(3);
  });

  it('burst defaults to the count; a request takes from every scope or from none', () => {
    expect(limitsSchema.parse({ rate: '10/s' }).rate).toMatchObject({ count: 10, perMs: 1_000, burst: 10 });
    const limiter = new RateLimiter();
    const agent = scope('agent', '100/s', 100);
    const grant = scope('grant', '1/h', 1);
    expect(limiter.take([agent, grant], 0).ok).toBe(true);
    const refused = limiter.take([agent, grant], 0);
    expect(refused.ok === false && refused.scope.key).toBe('grant');
    // The agent's bucket paid only for the request that passed.
    expect(limiter.remaining(agent, 0)).toBe(99);
  });

  it('a changed rate (a reload) starts a full bucket', () => {
    const limiter = new RateLimiter();
    expect(limiter.take([scope('bot', '1/h')], 0).ok).toBe(true);
    expect(limiter.take([scope('bot', '1/h')], 0).ok).toBe(false);
    expect(limiter.take([scope('bot', '2/h')], 0).ok).toBe(true);
  });

  it('the scopes a request meets: the agent on the grant, the agent, the grant', () => {
    const limits = limitsSchema.parse({ rate: '1/s' });
    const config = { agents: { bot: { limits, grant_limits: { api: limits } } }, grants: { api: { limits }, other: {} } };
    expect(limitScopes(config, 'bot', 'api').map((s) => s.kind)).toEqual(['agent_grant', 'agent', 'grant']);
    expect(limitScopes(config, 'bot', 'other').map((s) => s.kind)).toEqual(['agent']);
    expect(limitScopes(config, 'anonymous', 'other')).toEqual([]);
    // Ids are looked up as own keys only.
    expect(limitScopes(config, '__proto__', 'constructor')).toEqual([]);
  });

  it('a quota resets at the next UTC midnight', () => {
    expect(secondsToNextDay(new Date('2026-11-23T23:59:30.000Z'))).toBe(30);
    expect(secondsToNextDay(new Date('2026-11-24T00:00:00.000Z'))).toBe(86_400);
  });
});
