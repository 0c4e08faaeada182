// The dashboard's session clocks, the sign-in limit and the overview's minute ring, on pinned clocks.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { csrfMatches, dropCsrfParam, SessionStore, sessionIdOf } from '../../src/admin/session.ts';
import { SignInLimiter } from '../../src/admin/sign-in-limit.ts';
import { RecentMinutes } from '../../src/observability/counting-audit.ts';
import { injectEvent } from '../helpers/audit-events.ts';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('SessionStore', () => {
  it('ends a session left idle, and a busy one at its absolute expiry', () => {
    let now = 1_000_000;
    const store = new SessionStore({ idleMs: 1000, absoluteMs: 5000, maxSessions: 10 }, () => now);
    const idle = store.create();
    now += 999;
    expect(store.touch(idle.id)).toBe(idle);
    now += 999;
    expect(store.touch(idle.id)).toBe(idle); // each use restarts the idle clock
    now += 1000;
    expect(store.touch(idle.id)).toBeUndefined();
    const busy = store.create();
    for (let i = 0; i < 5; i++) {
      now += 900; // 4500 ms in all, never idle for 1000
      expect(store.touch(busy.id)).toBe(busy);
    }
    now += 900; // 5400 ms old: past the absolute expiry though just used
    expect(store.touch(busy.id)).toBeUndefined();
  });

  it('holds a bounded number of sessions, dropping the oldest; ids and CSRF tokens are random and distinct', () => {
    const store = new SessionStore({ idleMs: 60_000, absoluteMs: 60_000, maxSessions: 3 });
    const made = Array.from({ length: 4 }, () => store.create());
    expect(store.touch(made[0]!.id)).toBeUndefined();
    expect(store.touch(made[3]!.id)).toBe(made[3]);
    const values = made.flatMap((s) => [s.id, s.csrf]);
    expect(new Set(values).size).toBe(values.length);
    store.destroy(made[3]!.id);
    expect(store.touch(made[3]!.id)).toBeUndefined();
  });

  it('reads only a well-formed session cookie, and checks the CSRF header exactly', () => {
    const store = new SessionStore();
    const s = store.create();
    expect(sessionIdOf(req({ cookie: `a=b; keyway_session=${s.id}; c=d` }))).toBe(s.id);
    expect(sessionIdOf(req({ cookie: 'keyway_session=short' }))).toBeUndefined();
    expect(sessionIdOf(req({ cookie: `keyway_session=${s.id}x` }))).toBeUndefined();
    expect(sessionIdOf(req({}))).toBeUndefined();
    expect(csrfMatches(req({ 'x-keyway-csrf': s.csrf }), s)).toBe(true);
    expect(csrfMatches(req({ 'x-keyway-csrf': `${s.csrf} ` }), s)).toBe(false);
    expect(csrfMatches(req({ 'x-keyway-csrf': '' }), s)).toBe(false);
    expect(csrfMatches(req({}), s)).toBe(false);
  });

  it('takes the csrf query parameter off the URL, and only that one', () => {
    const cases: Array<[string, string]> = [
      ['/api/audit/stream?grant=github&csrf=abc&decision=deny', '/api/audit/stream?grant=github&decision=deny'],
      ['/api/audit/stream?csrf=abc', '/api/audit/stream'],
      ['/api/grants', '/api/grants'],
      ['/api/audit?grant=a%2Fb', '/api/audit?grant=a%2Fb'],
    ];
    for (const [url, expected] of cases) {
      const r = { url, headers: {} } as unknown as IncomingMessage;
      dropCsrfParam(r);
      expect(r.url).toBe(expected);
    }
  });
});

describe('SignInLimiter', () => {
  it('refuses a client after its failures in a window, until the window ends; other clients are apart', () => {
    let now = 0;
    const limiter = new SignInLimiter({ failures: 3, windowMs: 10_000, maxClients: 100 }, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfter('a')).toBe(0);
      limiter.failed('a');
    }
    expect(limiter.retryAfter('a')).toBe(10);
    expect(limiter.retryAfter('b')).toBe(0);
    now += 9_500;
    expect(limiter.retryAfter('a')).toBe(1);
    now += 500;
    expect(limiter.retryAfter('a')).toBe(0);
  });

  it('forgets the oldest client past its bound', () => {
    const limiter = new SignInLimiter({ failures: 1, windowMs: 60_000, maxClients: 2 });
    for (const c of ['a', 'b', 'c']) limiter.failed(c);
    expect(limiter.retryAfter('a')).toBe(0);
    expect(limiter.retryAfter('c')).toBeGreaterThan(0);
  });
});

describe('RecentMinutes', () => {
  it('counts by minute and decision, keeps the last hour, shows quiet minutes as zeros', () => {
    let now = Date.parse('2026-01-01T10:00:30Z');
    const recent = new RecentMinutes(60, () => now);
    recent.add({ ...injectEvent(1), refreshed: true });
    recent.add({ ...injectEvent(2), decision: 'deny', code: 'policy_denied' as never });
    recent.add({ ...injectEvent(3), decision: 'admin' });
    now += 60_000;
    recent.add(injectEvent(4));
    const snap = recent.snapshot();
    expect(snap).toHaveLength(60);
    expect(snap.at(-1)).toMatchObject({ minute: '2026-01-01T10:01:00.000Z', inject: 1, deny: 0 });
    expect(snap.at(-2)).toMatchObject({ minute: '2026-01-01T10:00:00.000Z', inject: 1, deny: 1, refreshed: 1, codes: { policy_denied: 1 } });
    expect(snap.at(-3)).toMatchObject({ inject: 0, deny: 0 });
    // An hour later the old minutes are gone, not counted again when their slot comes round.
    now += 60 * 60_000;
    recent.add(injectEvent(5));
    const later = recent.snapshot();
    expect(later.reduce((n, m) => n + m.inject + m.deny, 0)).toBe(1);
  });
});
