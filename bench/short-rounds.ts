// The full run's short rounds (issue 92): keyway and squid each started afresh once per round, then
// s1's and s2's first requests, s2's long round and s1 again (bench/burst-rounds.ts), in turns. What
// an agent's burst meets, beside the long rounds the other scenarios read after their warm-ups; and
// against the baseline build, interleaved the same way, so that a change that costs a fresh process
// CPU says so in the run that brings it.
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { type BurstPlan, type BurstRound, type BurstSeries, burstFigures, burstSeries, cpuUs, type FreshProxy, perRestartRatio } from './burst-rounds.ts';
import { keywayRoute, proxyRoute, type Route, type Tally } from './clients.ts';
import type { KeywayChild } from './keyway-child.ts';
import { processTreeCpuMs } from './proc.ts';
import type { TargetLine } from './report-targets.ts';
import { type SquidChild, type SquidChildOptions, startSquidChild } from './squid-child.ts';
import { fixed, signed } from './stats.ts';

/** Issue 92's marks, read by its peer harness on short rounds beside squid. */
export const SHORT_S2_CPU_GOAL = 1.4;
export const SHORT_S1_OVER_SQUID_GOAL_MS = 0.15;
/** How much dearer than the baseline build, interleaved, a fresh process's first s2 requests may read. */
export const SHORT_BASELINE_SLACK = 0.1;

export function keywayFresh(child: KeywayChild): FreshProxy {
  return {
    route: keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processTreeCpuMs(child.pid)),
    memory: () => child.memory(),
    stop: () => child.stop(),
  };
}

/** squid started for one round; `track` is told of it while it runs (the run's watchdog kills it). */
export async function squidFresh(options: SquidChildOptions, track: (squid: SquidChild | undefined) => void): Promise<FreshProxy> {
  const squid = await startSquidChild(options);
  track(squid);
  return {
    route: proxyRoute('squid', squid.url, squid.caPem, TLS_FIXTURES.ca, squid.cpuMs),
    memory: () => squid.memory(),
    stop: async () => {
      await squid.stop();
      track(undefined);
    },
  };
}

export interface ShortRoundsInput {
  plan: BurstPlan;
  rounds: number;
  startKeyway(): Promise<FreshProxy>;
  startSquid?: (() => Promise<FreshProxy>) | undefined;
  upstream: { port: number; direct: Route };
  tally: Tally;
}

export function shortRounds(o: ShortRoundsInput): Promise<BurstSeries> {
  const sides = [{ name: 'keyway', start: o.startKeyway }, ...(o.startSquid ? [{ name: 'squid', start: o.startSquid }] : [])];
  return burstSeries(sides, o.rounds, o.upstream, o.tally, o.plan);
}

const firstS2Cpu = (r: BurstRound) => cpuUs(r.s2);
const longCpu = (r: BurstRound) => cpuUs(r.long);

/** Issue 92's lines: the short-round figures against squid, and the long round of the same processes. */
export function shortRoundTargetLines(series: BurstSeries): TargetLine[] {
  if (!series.rounds['squid']) {
    return [{ target: 'short rounds: keyway against squid (issue 92)', measured: 'n/a (squid did not run)', pass: false, info: true }];
  }
  const cpu = perRestartRatio(series, 'keyway', 'squid', firstS2Cpu);
  const long = perRestartRatio(series, 'keyway', 'squid', longCpu);
  const k = burstFigures(series, 'keyway');
  const q = burstFigures(series, 'squid');
  const range = (r: { median: number; min: number; max: number }) => `${fixed(r.median, 3)}x (${fixed(r.min, 2)}-${fixed(r.max, 2)})`;
  return [
    {
      target: `short rounds: s2's first requests after a fresh start, CPU per request keyway <= ${SHORT_S2_CPU_GOAL}x squid's (issue 92)`,
      measured: range(cpu),
      pass: cpu.median <= SHORT_S2_CPU_GOAL,
    },
    {
      target: `short rounds: s1's first requests after a fresh start, keyway's added p50 <= squid's + ${SHORT_S1_OVER_SQUID_GOAL_MS} ms (issue 92)`,
      measured: `${signed(k.s1AddedP50Ms, 3)} ms vs ${signed(q.s1AddedP50Ms, 3)} ms`,
      pass: k.s1AddedP50Ms <= q.s1AddedP50Ms + SHORT_S1_OVER_SQUID_GOAL_MS,
    },
    { target: 'short rounds: the long round after them, CPU per request keyway ÷ squid (no target)', measured: range(long), pass: true, info: true },
    {
      target: 'short rounds: s1 again after the long round, keyway − squid added p50 (no target)',
      measured: `${signed(k.s1AfterAddedP50Ms - q.s1AfterAddedP50Ms, 3)} ms`,
      pass: true,
      info: true,
    },
  ];
}

/** The baseline guard's short-round line: this build's first s2 requests against the baseline build's, interleaved. */
export function shortBaselineLine(series: BurstSeries, baselineCommit: string): TargetLine {
  const cpu = perRestartRatio(series, 'this build', 'baseline', firstS2Cpu);
  return {
    target: `short rounds against ${baselineCommit.slice(0, 12)}, interleaved: s2's first requests, CPU per request this build ÷ baseline <= ${fixed(1 + SHORT_BASELINE_SLACK, 2)}`,
    measured: `${fixed(cpu.median, 3)} (${fixed(cpu.min, 3)}-${fixed(cpu.max, 3)})`,
    pass: cpu.median <= 1 + SHORT_BASELINE_SLACK,
  };
}
