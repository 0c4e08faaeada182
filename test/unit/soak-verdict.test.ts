import { describe, expect, it } from 'vitest';
import { judge, tailFigures, type Sample } from '../../bench/soak/verdict.ts';

const samples = (durationS: number, rss: (tS: number) => number): Sample[] =>
  Array.from({ length: durationS + 1 }, (_, tS) => ({ tS, rssMiB: rss(tS), fds: 20 }));
const base = {
  errors: {},
  rss: { markS: 60, markRule: 'after the first minute', atMarkMiB: 100, atEndMiB: 104, growthMiB: 4, peakMiB: 105 },
  drift: { firstWindows: [6, 17] as [number, number], lastWindows: [168, 179] as [number, number], firstP99Ms: 10, lastP99Ms: 10.5, driftPct: 5 },
  fds: { afterStart: 20, baseline: 20, peakDuringLoad: 90, afterDrain: 20, settledMs: 300 },
};

describe('soak: RSS flat over the last 10 minutes, once the caches are full', () => {
  it('a run under 20 minutes has no tail to judge: no target, rather than one that passes unmeasured', () => {
    expect(
      tailFigures(
        samples(600, () => 100),
        600_000,
        100,
      ),
    ).toBeUndefined();
    expect(judge({ ...base, tail: undefined }).map((t) => t.name)).not.toContain('RSS flat over the last 10 min (< 5 MiB)');
  });

  it('a 30-minute run is judged on its last 10 minutes: growth before them does not count, growth in them does', () => {
    // Grows 20 MiB while the caches fill (first 17 minutes), then flat but for 1 MiB.
    const filling = samples(1800, (t) => 100 + Math.min(20, t / 51) + (t > 1200 ? 1 : 0));
    const tail = tailFigures(filling, 1_800_000, 121)!;
    expect(tail.fromS).toBe(1200);
    expect(tail.growthMiB).toBeCloseTo(1, 5);
    expect(judge({ ...base, tail }).find((t) => t.name.startsWith('RSS flat'))).toMatchObject({ pass: true });
    // Still growing at the end: 6 MiB in the last 10 minutes.
    const leaking = samples(1800, (t) => 100 + t / 100);
    const bad = tailFigures(leaking, 1_800_000, 118)!;
    expect(bad.growthMiB).toBeCloseTo(6, 5);
    expect(judge({ ...base, tail: bad }).find((t) => t.name.startsWith('RSS flat'))).toMatchObject({ pass: false });
  });
});
