import { describe, expect, it } from 'vitest';
import { parseLimits } from '../../src/config/limits.ts';
import { readStoredLimits } from '../../src/config/limits-values.ts';

// A store agent's limits are read without zod (the running keyway's start does not load it), by
// readStoredLimits; the config's schema (parseLimits) checked them when they were written. The two
// must admit the same records and read them alike: anything the schema refuses, the reader drops.

const INPUTS: unknown[] = [
  {},
  { rate: '60/min' },
  { rate: ' 10 / s ', burst: 3 },
  { rate: '1/hour', burst: 1_000_000 },
  { rate: '999999999/h' },
  { quota: { requests: '10000/day' } },
  { quota: { bytes: '2GiB/day' } },
  { quota: { requests: '5/day', bytes: '100kB / day' } },
  { rate: '5/s', burst: 2, quota: { requests: '1/day' } },
  { rate: undefined, quota: { requests: '7/day', bytes: undefined } },
  // What the schema refuses, each in its own way.
  null,
  [],
  'rate: 60/min',
  60,
  { rate: 'fast' },
  { rate: '0/s' },
  { rate: '1000000000/s' },
  { rate: '5/day' },
  { rate: 60 },
  { rate: null },
  { rate: ['60/min'] },
  { burst: 5 },
  { rate: '5/s', burst: 0 },
  { rate: '5/s', burst: 2.5 },
  { rate: '5/s', burst: 1_000_001 },
  { rate: '5/s', burst: '3' },
  { rate: '5/s', burst: Number.NaN },
  { rate: '5/s', burst: Number.POSITIVE_INFINITY },
  { rate: '5/s', window: '1m' },
  { quota: {} },
  { quota: null },
  { quota: [] },
  { quota: { requests: 'lots' } },
  { quota: { requests: '0/day' } },
  { quota: { requests: '1.5/day' } },
  { quota: { requests: 10 } },
  { quota: { bytes: 'a lot' } },
  { quota: { bytes: '0B/day' } },
  { quota: { bytes: '2GiB/week' } },
  { quota: { requests: '1/day', tokens: '5/day' } },
  { quota: { requests: '1/day', bytes: null } },
];

describe("a store agent's limits, read without the config's schema", () => {
  it.each(INPUTS.map((input) => [JSON.stringify(input) ?? String(input), input]))('%s reads as the schema parses it', (_, input) => {
    const parsed = parseLimits(input);
    expect(readStoredLimits(input)).toEqual(typeof parsed === 'string' ? undefined : parsed);
  });

  it('reads a rate, its burst and a quota', () => {
    expect(readStoredLimits({ rate: '60/min', burst: 20, quota: { requests: '10000/day', bytes: '1KiB/day' } })).toEqual({
      rate: { count: 60, perMs: 60_000, burst: 20, text: '60/min' },
      quota: { requests: 10_000, bytes: 1024 },
    });
  });

  it('drops a record edited into a key nobody listed, at any depth', () => {
    expect(readStoredLimits({ rate: '1/s', __proto__: { burst: 5 }, extra: true })).toBeUndefined();
    expect(readStoredLimits(JSON.parse('{"rate":"1/s","constructor":{}}'))).toBeUndefined();
    expect(readStoredLimits({ quota: { requests: '1/day', constructor: 1 } })).toBeUndefined();
  });
});
