// The admin callback's states: single use, short-lived, bounded in number, and a second try told
// what happened. A pinned clock stands in for waiting ten minutes.
import { describe, expect, it } from 'vitest';
import { MAX_PENDING_STATES, PendingAuthorizations } from '../../src/admin/oauth-states.ts';
import type { ConnectPlan } from '../../src/oauth/connect-plan.ts';

const plan = (grantId: string) => ({ grantId }) as unknown as ConnectPlan;
const flow = (grant: string) => ({ plan: plan(grant), verifier: 'v', redirectUri: 'http://127.0.0.1:1/oauth/callback' });

describe('PendingAuthorizations', () => {
  it('hands a state out once; a second claim is told it was used', () => {
    const states = new PendingAuthorizations();
    states.add('s1', flow('a'));
    expect(states.claim('s1')).toMatchObject({ kind: 'ok', pending: { plan: { grantId: 'a' } } });
    expect(states.claim('s1')).toEqual({ kind: 'used', grant: 'a' });
    expect(states.claim('s2')).toEqual({ kind: 'unknown' });
  });

  it('refuses a state past its time, and forgets it a while later', () => {
    let now = 1_000_000;
    const states = new PendingAuthorizations(60_000, () => now);
    const expiresAt = states.add('s1', flow('a'));
    expect(expiresAt).toBe(1_060_000);
    states.add('s2', flow('b'));
    now = expiresAt;
    expect(states.claim('s1')).toEqual({ kind: 'expired', grant: 'a' });
    now += 60_000;
    expect(states.claim('s2')).toEqual({ kind: 'unknown' });
  });

  it('keeps at most MAX_PENDING_STATES waiting flows, forgetting the oldest', () => {
    const states = new PendingAuthorizations();
    for (let i = 0; i <= MAX_PENDING_STATES; i++) states.add(`s${i}`, flow(`g${i}`));
    expect(states.claim('s0')).toEqual({ kind: 'unknown' });
    expect(states.claim(`s${MAX_PENDING_STATES}`).kind).toBe('ok');
    expect(states.claim('s1').kind).toBe('ok');
  });
});
