// The anomaly core (src/anomaly/core/): path classes, the burst baseline and its caps, hours, the
// per-agent record's bounds, and the signals judged against it. Pure: no proxy, no store.
import { describe, expect, it } from 'vitest';
import { burstLimit, burstWhy, freshBurst, MIN_BASELINE, rollBurst, teachBurst, type BurstState } from '../../../src/anomaly/core/burst.ts';
import { offHoursWhy, withinHours } from '../../../src/anomaly/core/hours.ts';
import { judge } from '../../../src/anomaly/core/judge.ts';
import { pathClass } from '../../../src/anomaly/core/path-class.ts';
import { addCounts, emptyRecord, learn, MAX_CLASSES, MAX_GRANTS, MAX_METHODS, type AnomalyRecord, type Seen } from '../../../src/anomaly/core/record.ts';
import { settingsFor } from '../../../src/anomaly/core/resolve.ts';
import type { AnomalySettings } from '../../../src/anomaly/core/settings.ts';
import { anomalySchema } from '../../../src/config/schema/anomaly.ts';

const MIN = 60_000;
const BURST = { perMs: MIN, factor: 5 };
const ALL: AnomalySettings = { mode: 'hold', first_use: true, new_host: true, new_method: true, burst: BURST, off_hours: undefined };
const T0 = Date.parse('2026-11-25T10:00:00Z'); // a Wednesday

function seen(over: Partial<Seen> = {}): Seen {
  return { grant: 'github', method: 'GET', host: 'api.github.com:443', pathClass: '/repos/acme', hourOfWeek: undefined, ...over };
}

describe('path classes', () => {
  it('keeps the first two segments, ids collapsed, and never the query', () => {
    expect(pathClass('/repos/acme/api/issues/7?token=x')).toBe('/repos/acme');
    expect(pathClass('/v1/123/items')).toBe('/v1/{id}');
    expect(pathClass('/users/0f8fad5b-d9cb-469f-a165-70867728950e')).toBe('/users/{id}');
    expect(pathClass('/commits/4b825dc642cb6eb9a060e54bf8d69288fbee4904')).toBe('/commits/{id}');
    expect(pathClass('/objects/AbCdEfGhIjKlMnOpQrSt9')).toBe('/objects/{id}');
    expect(pathClass(`/x/${'a'.repeat(65)}`)).toBe('/x/{id}');
    // An allow-list: only plain lowercase words are kept; a value that looks like no id is collapsed too.
    expect(pathClass('/bot123456:AAEhBP/sendMessage')).toBe('/{id}/{id}');
    expect(pathClass('/tok:en.secret/x')).toBe('/{id}/x');
    expect(pathClass('/a+b=/Shh')).toBe('/{id}/{id}');
    expect(pathClass('/v1/oauth2')).toBe('/v1/oauth2');
    expect(pathClass('/v2024/x%20y')).toBe('/{id}/{id}');
    expect(pathClass('/')).toBe('/');
    expect(pathClass('//a//b//c')).toBe('/a/b');
    // Words stay words (not ids): a class an agent never called is a new class.
    expect(pathClass('/repos/settings')).toBe('/repos/settings');
  });
});

describe('the burst baseline', () => {
  it('fires past factor × the baseline (read as at least MIN_BASELINE), and not at it', () => {
    const state: BurstState = { ...freshBurst(T0, MIN), count: 5 * MIN_BASELINE - 1 };
    expect(burstWhy(state, 0, BURST)).toBeUndefined(); // the 10th request
    expect(burstWhy(state, 1, BURST)).toMatch(/^11 requests in this 1m window, over 5 × its baseline of 2\.0/);
  });

  it('moves up at most 10% a window and at most doubles in a day: slow training cannot make a burst look normal', () => {
    let state = freshBurst(T0, MIN);
    let t = T0;
    // The agent goes just under the limit every minute for six hours, trying to raise it.
    let admitted = 0;
    for (let i = 0; i < 360; i++) {
      const limit = burstLimit(state, BURST);
      state = { ...state, count: Math.floor(limit) };
      admitted += Math.floor(limit);
      t += MIN;
      state = rollBurst(state, t, MIN);
    }
    // From the floor of 2, a day lets it reach 4 at most: a burst is still 5 × 4 = 20 a minute.
    expect(state.baseline).toBeLessThanOrEqual(2 * MIN_BASELINE + 1e-9);
    expect(burstLimit(state, BURST)).toBeLessThanOrEqual(20);
    expect(burstWhy({ ...state, count: 100 }, 0, BURST)).toBeDefined();
    expect(admitted).toBeGreaterThan(0);
  });

  it('without the caps the same training would have gone far: the cap is what holds', () => {
    // One window at 9 (under the limit of 10) moves the baseline 2 -> at most 2.2, not 2 + 0.25 × 7.
    const next = rollBurst({ ...freshBurst(T0, MIN), baseline: 2, dayBase: 2, count: 9 }, T0 + MIN, MIN);
    expect(next.baseline).toBeCloseTo(2.2, 5);
  });

  it('decays when the agent is idle, and a person’s yes raises it past the window it approved', () => {
    const busy: BurstState = { ...freshBurst(T0, MIN), baseline: 40, dayBase: 40 };
    expect(rollBurst(busy, T0 + 30 * MIN, MIN).baseline).toBeLessThan(1);
    const taught = teachBurst({ ...freshBurst(T0, MIN), count: 30 }, BURST);
    expect(taught.baseline).toBeCloseTo((2 * 31) / 5, 5);
    expect(burstWhy(taught, 0, BURST)).toBeUndefined();
  });

  it('drops a late flush of a window already closed rather than put it on the next', () => {
    const record = addCounts(emptyRecord(), T0 - (T0 % MIN), 3, MIN, T0);
    expect(record.burst?.count).toBe(3);
    const later = addCounts(record, T0 - (T0 % MIN), 4, MIN, T0 + 2 * MIN);
    expect(later.burst?.count).toBe(0);
  });
});

describe('hours', () => {
  const hours = { from: 9, to: 18, days: [1, 2, 3, 4, 5], tz: 'Europe/Paris' };
  it('reads the hours in the time zone, and a span past midnight belongs to the day it began', () => {
    expect(withinHours(new Date('2026-11-25T08:30:00Z'), hours)).toBe(true); // 09:30 in Paris
    expect(withinHours(new Date('2026-11-25T07:30:00Z'), hours)).toBe(false); // 08:30
    expect(withinHours(new Date('2026-11-28T10:00:00Z'), hours)).toBe(false); // a Saturday
    const night = { from: 22, to: 6, days: [5], tz: 'UTC' };
    expect(withinHours(new Date('2026-11-28T03:00:00Z'), night)).toBe(true); // Sat 03:00, Friday's night
    expect(withinHours(new Date('2026-11-27T03:00:00Z'), night)).toBe(false); // Fri 03:00, Thursday's
  });
  it('fires outside them unless that hour of the week was taught', () => {
    const at = new Date('2026-11-28T02:00:00Z'); // Sat 03:00 in Paris
    expect(offHoursWhy(at, hours, [])).toBe('Sat 03:00 Europe/Paris is outside its usual hours');
    expect(offHoursWhy(at, hours, [6 * 24 + 3])).toBeUndefined();
  });
  it('follows the zone across daylight saving: the local clock, not a fixed offset', () => {
    expect(withinHours(new Date('2026-07-01T07:30:00Z'), hours)).toBe(true); // 09:30 summer time
    expect(withinHours(new Date('2026-11-25T07:30:00Z'), hours)).toBe(false); // 08:30 winter time
    // The hour repeated when the clocks go back (Sun 25 Oct 2026, 02:00-03:00 twice) is one hour of the week: taught once, both pass.
    for (const at of ['2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z']) {
      expect(offHoursWhy(new Date(at), hours, [])).toBe('Sun 02:00 Europe/Paris is outside its usual hours');
      expect(offHoursWhy(new Date(at), hours, [2])).toBeUndefined();
    }
    // The hour skipped when they go forward (Sun 29 Mar 2026, 02:00 never is): 01:59 is followed by 03:00, which 01 taught does not cover.
    expect(offHoursWhy(new Date('2026-03-29T00:59:00Z'), hours, [1])).toBeUndefined();
    expect(offHoursWhy(new Date('2026-03-29T01:00:00Z'), hours, [1])).toBe('Sun 03:00 Europe/Paris is outside its usual hours');
    // A night span over the change still belongs to the day it began.
    expect(withinHours(new Date('2026-03-29T01:30:00Z'), { from: 22, to: 6, days: [6], tz: 'Europe/Paris' })).toBe(true); // Sun 03:30, Saturday's night
  });
  it('hours taught in one zone teach nothing after off_hours.tz changes: Sat 03 in UTC is not Sat 03 in Los Angeles', () => {
    const inUtc = { ...ALL, off_hours: { from: 8, to: 19, days: [1, 2, 3, 4, 5], tz: 'UTC' } };
    const inLa = { ...ALL, off_hours: { ...inUtc.off_hours, tz: 'America/Los_Angeles' } };
    const satNightUtc = new Date('2026-11-28T03:00:00Z');
    const satNightLa = new Date('2026-11-28T11:00:00Z'); // Sat 03:00 in Los Angeles
    const fired = judge(undefined, seen({ hourOfWeek: 6 * 24 + 3 }), inUtc, satNightUtc, 0);
    const taught = learn(learn(emptyRecord(), seen(), [], inUtc, T0), seen({ hourOfWeek: 6 * 24 + 3 }), fired, inUtc, satNightUtc.getTime());
    expect(taught).toMatchObject({ hours: [6 * 24 + 3], hoursTz: 'UTC' });
    expect(judge(taught, seen(), inUtc, satNightUtc, 0).map((s) => s.name)).not.toContain('off_hours');
    expect(judge(taught, seen(), inLa, satNightLa, 0).map((s) => s.name)).toContain('off_hours');
    // Taught again in the new zone: the old zone's hours go.
    const again = learn(taught, seen({ hourOfWeek: 6 * 24 + 3 }), [{ name: 'off_hours', why: '' }], inLa, satNightLa.getTime());
    expect(again).toMatchObject({ hours: [6 * 24 + 3], hoursTz: 'America/Los_Angeles' });
  });
});

describe('the signals', () => {
  const now = new Date(T0);
  const known: AnomalyRecord = learn(emptyRecord(), seen(), [], ALL, T0);

  it('a first use names the grant alone; a known request raises nothing', () => {
    expect(judge(undefined, seen(), ALL, now, 0).map((s) => s.name)).toEqual(['first_use']);
    expect(judge(known, seen(), ALL, now, 0)).toEqual([]);
  });
  it('a new host, a new path class on a known host, a new method', () => {
    expect(judge(known, seen({ host: 'uploads.github.com:443' }), ALL, now, 0)).toEqual([
      { name: 'new_host', why: 'host uploads.github.com:443 never called on grant github' },
    ]);
    expect(judge(known, seen({ pathClass: '/admin/keys' }), ALL, now, 0)[0]?.why).toBe('path class /admin/keys on api.github.com:443 never called before');
    expect(judge(known, seen({ method: 'DELETE' }), ALL, now, 0)).toEqual([{ name: 'new_method', why: 'method DELETE never used on grant github' }]);
  });
  it('a signal turned off does not fire', () => {
    const quiet = { ...ALL, first_use: false, new_method: false };
    expect(judge(undefined, seen(), quiet, now, 0)).toEqual([]);
    expect(judge(known, seen({ method: 'DELETE' }), quiet, now, 0)).toEqual([]);
  });
  it('counts what this process has not stored yet toward a burst', () => {
    const counted = addCounts(known, T0 - (T0 % MIN), 6, MIN, T0);
    expect(judge(counted, seen(), ALL, now, 3)).toEqual([]);
    expect(judge(counted, seen(), ALL, now, 4).map((s) => s.name)).toEqual(['burst']);
  });
  it('is bounded: past the bounds nothing more is learned, and the new keeps firing', () => {
    let record = emptyRecord();
    for (let i = 0; i < MAX_GRANTS + 5; i++) record = learn(record, seen({ grant: `g${i}` }), [], ALL, T0);
    expect(Object.keys(record.grants)).toHaveLength(MAX_GRANTS);
    expect(judge(record, seen({ grant: `g${MAX_GRANTS + 1}` }), ALL, now, 0).map((s) => s.name)).toEqual(['first_use']);
    for (let i = 0; i < MAX_CLASSES + 5; i++) record = learn(record, seen({ grant: 'g0', pathClass: `/c/${i}x` }), [], ALL, T0);
    expect(record.grants['g0']!.classes).toHaveLength(MAX_CLASSES);
    expect(JSON.stringify(record).length).toBeLessThan(64 * 1024);
  });
  it('evicts nothing: an agent filling its history with junk keeps what it learned first, and the dangerous new still fires', () => {
    let record = learn(emptyRecord(), seen(), [], ALL, T0); // GET /repos/acme, learned first
    for (let i = 0; i < MAX_METHODS + 4; i++) record = learn(record, seen({ method: `JUNK${i}` }), [], ALL, T0);
    for (let i = 0; i < MAX_CLASSES + 4; i++) record = learn(record, seen({ pathClass: `/junk/${i}x` }), [], ALL, T0);
    expect(record.grants['github']!.methods).toHaveLength(MAX_METHODS);
    // The first learned is still usual: no flood of holds on what the agent always did.
    expect(judge(record, seen(), ALL, new Date(T0), 0)).toEqual([]);
    // A DELETE and an admin path it never used stay new, however full the history.
    expect(judge(record, seen({ method: 'DELETE' }), ALL, new Date(T0), 0).map((s) => s.name)).toEqual(['new_method']);
    expect(judge(record, seen({ pathClass: '/admin/keys' }), ALL, new Date(T0), 0).map((s) => s.name)).toEqual(['new_host']);
  });
});

describe('the config', () => {
  it('reads defaults, per-agent overrides and an ancestor’s for a child', () => {
    const config = anomalySchema.parse({
      mode: 'alert',
      signals: { off_hours: { hours: '09-18', days: 'mon-fri', tz: 'Europe/Paris' } },
      agents: { ci: { mode: 'hold', signals: { burst: false } } },
    });
    expect(settingsFor(config, 'bot')).toMatchObject({
      mode: 'alert',
      burst: { perMs: MIN, factor: 5 },
      off_hours: { from: 9, to: 18, days: [1, 2, 3, 4, 5] },
    });
    expect(settingsFor(config, 'ci')).toMatchObject({ mode: 'hold', burst: undefined, first_use: true });
    expect(settingsFor(config, 'ci-child', ['ci']).mode).toBe('hold');
    expect(anomalySchema.parse({}).mode).toBe('off');
  });
  it('refuses what it does not admit, naming why', () => {
    expect(() => anomalySchema.parse({ mode: 'block' })).toThrow();
    expect(() => anomalySchema.parse({ signals: { off_hours: { hours: '9' } } })).toThrow(/FROM-TO/);
    expect(() => anomalySchema.parse({ signals: { off_hours: { tz: 'Mars/Olympus' } } })).toThrow(/IANA/);
    expect(() => anomalySchema.parse({ signals: { burst: { per: '10ms' } } })).toThrow(/1s to 1h/);
    expect(() => anomalySchema.parse({ signals: { burst: { factor: 1 } } })).toThrow();
    expect(() => anomalySchema.parse({ signals: { new_hosts: true } })).toThrow();
  });
});
