// Soak, short form: the code behind `npm run soak` (bench/soak/), run as a library at a lower rate
// for a few seconds against keyway started as a child process. A run this short asserts only what
// it can judge: every request answered (injection, new hosts, refreshes under rotation) and keyway's
// descriptors back to their baseline once the load is gone. RSS growth and p99 drift need minutes
// and a quiet machine: they are reported, not asserted (npm run soak judges them).
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../bench/soak/options.ts';
import { runSoak } from '../../bench/soak/run.ts';
import { LONG, report, scale } from './scale.ts';

const durationMs = scale(10_000, 60_000);
const warmupMs = scale(3000, 10_000);

describe('soak (open-loop load with injection, new hosts and token refreshes)', () => {
  it(
    'answers every request and gives back every descriptor',
    async () => {
      const result = await runSoak({
        ...DEFAULTS,
        durationMs,
        warmupMs,
        rate: scale(300, 2000),
        windowMs: scale(2000, 10_000),
        // The keyway child runs from src/ (the test needs no build); npm run soak runs dist/.
        cli: undefined,
      });
      report('soak', {
        rate: result.options.rate,
        seconds: durationMs / 1000,
        requests: result.load.sent,
        okPerS: Math.round(result.okPerS),
        errors: result.errors,
        p50Ms: result.load.latencyMs.p50,
        p99Ms: result.load.latencyMs.p99,
        generatorLagP99Ms: result.load.lagMs.p99,
        newHosts: result.newHosts,
        refreshes: result.tokenEndpoint.refreshed,
        rssGrowthMiB: Number(result.rss.growthMiB.toFixed(1)),
        p99DriftPct: Number(result.drift.driftPct.toFixed(1)),
        fds: result.fds,
      });
      expect(result.errors).toEqual({});
      expect(result.newHosts).toBeGreaterThanOrEqual(Math.floor(durationMs / 1000) - 1);
      expect(result.tokenEndpoint.refreshed).toBeGreaterThanOrEqual(2);
      expect(result.upstream.withoutCredentialViaKeyway).toBe(0);
      expect(result.fds.afterDrain).toBeLessThanOrEqual(result.fds.baseline);
    },
    // Setup (three CLI runs and a start on a busy machine), warm-up, the run, its drain.
    (warmupMs + durationMs) * (LONG ? 2 : 1) + 90_000,
  );
});
