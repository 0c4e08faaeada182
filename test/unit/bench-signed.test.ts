// The bench's s8/s9 figures (what SigV4 signing costs): rounds paired per grant in alternating
// order, medians of CPU per request and per MiB, and issue 24's target of at most 1.2x the bearer
// grant's CPU per request.
import { describe, expect, it } from 'vitest';
import type { AwsHostCounts } from '../../bench/aws-host.ts';
import { latencyFigures } from '../../bench/report.ts';
import { signedGetFigures, signedGetTable, signedUploadFigures } from '../../bench/report-signed.ts';
import { signedTargetLines } from '../../bench/report-targets.ts';
import type { LatencyResult, ThroughputResult } from '../../bench/scenarios.ts';
import { type Paired, pairedRounds } from '../../bench/signed.ts';
import { mcpFigures, mcpTable, mcpTargetLines } from '../../bench/mcp.ts';

const latency = (requests: number, p50: number, cpuMs: number): LatencyResult => ({
  requests,
  seconds: 1,
  rps: requests,
  latencyMs: { count: requests, p50, p99: p50 * 3, mean: p50 },
  cpuMs,
});
const upload = (mibPerSecond: number, cpuMs: number): ThroughputResult => ({ transfers: mibPerSecond, seconds: 1, mibPerSecond, cpuMs });
const s2 = latencyFigures([{ direct: latency(4000, 1, 0), keyway: latency(1000, 5, 400) }]);
const clean: AwsHostCounts = { total: 5000, signed: 5000, refused: 0, verified: 18, verifyFailed: 0, firstProblem: undefined };

describe('bench s8/s9 pairing', () => {
  it('runs both grants every round, the first of the pair alternating', async () => {
    const order: string[] = [];
    const out = await pairedRounds(3, async (grant) => {
      order.push(grant);
      return grant;
    });
    expect(order).toEqual(['bearer', 'sigv4', 'sigv4', 'bearer', 'bearer', 'sigv4']);
    expect(out).toEqual(Array.from({ length: 3 }, () => ({ bearer: 'bearer', sigv4: 'sigv4' })));
  });
});

describe('bench s8/s9 figures and targets', () => {
  const s8Rounds = (sigv4CpuMs: number): Array<Paired<LatencyResult>> => [
    { bearer: latency(1000, 5, 400), sigv4: latency(1000, 5.5, sigv4CpuMs) },
    { bearer: latency(1000, 5, 420), sigv4: latency(1000, 6, sigv4CpuMs) },
    { bearer: latency(1000, 5, 380), sigv4: latency(1000, 5.8, sigv4CpuMs) },
  ];
  const s9 = signedUploadFigures(
    [
      { bearer: upload(200, 1000), sigv4: upload(150, 1050) },
      { bearer: upload(220, 1100), sigv4: upload(160, 1120) },
    ],
    210,
  );

  it('compares medians of CPU per request with the bearer grant of the same rounds, and with s2', () => {
    const f = signedGetFigures(s8Rounds(505), s2);
    expect(f.bearer.cpuMsPerRequest).toBeCloseTo(0.4, 6); // 0.4, 0.42, 0.38
    expect(f.sigv4.cpuMsPerRequest).toBeCloseTo(0.505, 6);
    expect(f.cpuRatio).toBeCloseTo(0.505 / 0.4, 6);
    expect(f.cpuRatioToS2).toBeCloseTo(0.505 / 0.4, 6);
    expect(f.rpsRatio).toBe(1);
    expect(f.addedP50Ms).toBeCloseTo(0.8, 6);
    expect(signedGetTable(s8Rounds(505), f, s2)).toContain('sigv4 ÷ bearer: CPU per request 1.26x (target <= 1.2x)');
  });

  it('reports what holding and hashing a 1 MiB body costs per MiB, against the bearer grant', () => {
    expect(s9.bearer).toEqual({ mibPerSecond: 210, cpuMsPerMiB: 5 });
    expect(s9.sigv4.mibPerSecond).toBe(155);
    expect(s9.sigv4.cpuMsPerMiB).toBeCloseTo((7 + 7) / 2, 6);
    expect(s9.addedCpuMsPerMiB).toBeCloseTo(2, 6);
    expect(s9.throughputRatioToS4).toBeCloseTo(155 / 210, 6);
  });

  it('passes at 1.2x the bearer CPU per request, misses above it; s9 is info only', () => {
    const at = signedTargetLines(signedGetFigures(s8Rounds(470), s2), s9, clean);
    expect(at[0]).toMatchObject({ pass: true, measured: '0.470 ms vs 0.400 ms (1.175x)' });
    expect(at.filter((l) => l.info).map((l) => l.target.slice(0, 3))).toEqual(['s8 ', 's9 ', 's9 ']);
    expect(at.at(-1)).toMatchObject({ pass: true });
    const over = signedTargetLines(signedGetFigures(s8Rounds(500), s2), s9, clean);
    expect(over[0]).toMatchObject({ pass: false });
  });

  it('misses the signature line when a request arrived unsigned, one failed verification, or none was verified', () => {
    const f = signedGetFigures(s8Rounds(470), s2);
    for (const counts of [
      { ...clean, refused: 1 },
      { ...clean, verifyFailed: 1 },
      { ...clean, verified: 0 },
    ]) {
      expect(signedTargetLines(f, s9, counts).at(-1)).toMatchObject({ pass: false });
    }
  });
});

describe('bench s10 figures and target', () => {
  const rounds = (mcpCpuMs: number) => [
    { plain: latency(1000, 5, 400), mcp: latency(1000, 5.2, mcpCpuMs) },
    { plain: latency(1000, 5, 420), mcp: latency(1000, 5.1, mcpCpuMs) },
  ];
  it('compares the MCP path with the plain one, CPU per request against 1.2x', () => {
    const f = mcpFigures(rounds(450));
    expect(f.cpuRatio).toBeCloseTo(450 / 410, 6);
    expect(mcpTargetLines(f)[0]?.pass).toBe(true);
    expect(mcpTargetLines(mcpFigures(rounds(600)))[0]?.pass).toBe(false);
    expect(mcpTable(rounds(450), f)).toMatch(/\/mcp ÷ \/rpc: CPU per request 1\.10x \(target <= 1\.2x\)/);
  });
});
