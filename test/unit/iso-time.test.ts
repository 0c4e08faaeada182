import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isoTime, useIsoTimeForDates, usesIsoTime } from '../../src/iso-time.ts';

// keyway's ISO text of a time (src/iso-time.ts) stands in for V8's Date.prototype.toISOString in the
// proxy process: it must give the very same text for every Date, and the same errors.

const v8ToIsoString = Date.prototype.toISOString;
const v8 = (ms: number): string => v8ToIsoString.call(new Date(ms));

/** The first and last millisecond of the years 0000-9999. */
const FIRST_MS = -62_167_219_200_000;
const LAST_MS = 253_402_300_799_999;

describe('isoTime', () => {
  it('writes what V8 writes for any millisecond of the years 0000-9999', () => {
    fc.assert(
      fc.property(fc.integer({ min: FIRST_MS, max: LAST_MS }), (ms) => {
        expect(isoTime(ms)).toBe(v8(ms));
      }),
      { numRuns: 20_000 },
    );
  });

  it('gets the edges right: the range, the epoch, leap days and century years, the last millisecond of a day', () => {
    const edges = [
      FIRST_MS,
      LAST_MS,
      0,
      -1,
      Date.UTC(2000, 1, 29, 12),
      Date.UTC(1900, 1, 28, 23, 59, 59, 999),
      Date.UTC(1900, 2, 1),
      Date.UTC(2100, 1, 28, 23, 59, 59, 999),
      Date.UTC(2100, 2, 1),
      Date.UTC(2024, 11, 31, 23, 59, 59, 999),
      Date.UTC(2025, 0, 1),
      Date.UTC(1600, 1, 29),
    ];
    for (const ms of edges) expect(isoTime(ms)).toBe(v8(ms));
    // Years 0-99, which Date.UTC would read as 1900-1999.
    for (let year = 0; year < 100; year += 7) {
      const date = new Date(0);
      date.setUTCFullYear(year, 1, year % 4 === 0 ? 29 : 28);
      expect(isoTime(date.getTime())).toBe(v8ToIsoString.call(date));
    }
  });
});

describe('useIsoTimeForDates', () => {
  beforeAll(() => useIsoTimeForDates());
  afterAll(() => {
    Date.prototype.toISOString = v8ToIsoString;
  });

  it("makes every Date's toISOString and JSON keyway's, with V8's text", () => {
    expect(usesIsoTime()).toBe(true);
    expect(Date.prototype.toISOString).not.toBe(v8ToIsoString);
    const date = new Date(Date.UTC(2026, 10, 27, 13, 31, 57, 768));
    expect(date.toISOString()).toBe('2026-11-27T13:31:57.768Z');
    expect(JSON.stringify({ at: date })).toBe('{"at":"2026-11-27T13:31:57.768Z"}');
    // Still not enumerable, as V8's is.
    expect(Object.keys(Date.prototype)).not.toContain('toISOString');
  });

  it('leaves years outside 0000-9999 to V8, and throws what V8 throws', () => {
    for (const ms of [FIRST_MS - 1, LAST_MS + 1, -8.64e15, 8.64e15]) expect(new Date(ms).toISOString()).toBe(v8(ms));
    expect(() => new Date(Number.NaN).toISOString()).toThrow(RangeError);
    expect(() => Date.prototype.toISOString.call({} as Date)).toThrow(TypeError);
  });
});
