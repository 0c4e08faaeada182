// keyway's own histograms (observability/metrics/histogram.ts) must read at /metrics exactly as
// prom-client's Histogram reads for the same observations: the same bucket counts, sum and count,
// the same values in the same order, in the text and in the JSON a primary of workers aggregates.
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainHistogram } from '../../src/observability/metrics/histogram.ts';

const BUCKETS = [0.001, 0.0025, 0.01, 0.5, 1, 30];

/** Both histograms fed the same observations, each in a registry of its own. */
function both(label: string | undefined, observations: ReadonlyArray<[number, string]>) {
  const ours = new PlainHistogram({ name: 'h_seconds', help: 'A test histogram.', buckets: BUCKETS, ...(label === undefined ? {} : { label }) });
  const theirs = new Histogram({
    name: 'h_seconds',
    help: 'A test histogram.',
    buckets: BUCKETS,
    labelNames: label === undefined ? [] : [label],
    registers: [],
  });
  for (const [value, labelValue] of observations) {
    ours.observe(value, label === undefined ? undefined : labelValue);
    if (label === undefined) theirs.observe(value);
    else theirs.observe({ [label]: labelValue }, value);
  }
  const a = new Registry();
  a.registerMetric(ours.metric() as never);
  const b = new Registry();
  b.registerMetric(theirs);
  return { a, b };
}

// Values on the bounds (a bound counts its own value), between them, past the last, and zero.
const value = fc.oneof(fc.constantFrom(0, ...BUCKETS), fc.double({ min: 0, max: 60, noNaN: true }));
const observations = fc.array(fc.tuple(value, fc.constantFrom('ok', 'failed', 'github')), { maxLength: 40 });

describe("keyway's histograms at a scrape", () => {
  it('read as prom-client reads the same observations, unlabelled and labelled, in text and in JSON', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(undefined, 'result'), observations, async (label, seen) => {
        const { a, b } = both(label, seen);
        expect(await a.metrics()).toEqual(await b.metrics());
        expect(await a.getMetricsAsJSON()).toEqual(await b.getMetricsAsJSON());
      }),
      { numRuns: 200 },
    );
  });

  it('show an unlabelled histogram at zero before any observation, and a labelled one not at all', async () => {
    const unlabelled = both(undefined, []);
    expect(await unlabelled.a.metrics()).toContain('h_seconds_count 0');
    expect(await unlabelled.a.metrics()).toEqual(await unlabelled.b.metrics());
    const labelled = both('grant', []);
    expect(await labelled.a.metrics()).not.toContain('h_seconds_count');
    expect(await labelled.a.metrics()).toEqual(await labelled.b.metrics());
  });

  it('count an observation in the first bucket at or above it, and ignore one that is not a number', async () => {
    const { a } = both(undefined, [
      [0.001, ''],
      [0.0011, ''],
      [31, ''],
    ]);
    const text = await a.metrics();
    expect(text).toContain('h_seconds_bucket{le="0.001"} 1');
    expect(text).toContain('h_seconds_bucket{le="0.0025"} 2');
    expect(text).toContain('h_seconds_bucket{le="30"} 2');
    expect(text).toContain('h_seconds_bucket{le="+Inf"} 3');
    const ours = new PlainHistogram({ name: 'n_seconds', help: 'n', buckets: BUCKETS });
    ours.observe(Number.NaN);
    ours.observe(Number.POSITIVE_INFINITY);
    const registry = new Registry();
    registry.registerMetric(ours.metric() as never);
    expect(await registry.metrics()).toContain('n_seconds_count 0');
  });
});
