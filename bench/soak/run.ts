// One soak, as a library (bench/soak.ts and test/hostile/soak.test.ts both call runSoak): start the
// world (its descriptor count right after start is the baseline), warm up, run the open-loop load
// with readings every second, drain, check descriptors come back, and judge the targets.
import { rmSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import { runOpenLoop, type LoadResult, type WindowStats } from './load.ts';
import type { SoakOptions } from './options.ts';
import { procProbe, waitForFds } from './probe.ts';
import { mix, sender, startWorld, type World } from './setup.ts';
import { DEFAULT_MAX_LEAVES } from '../../src/tls/contexts.ts';
import {
  driftFigures,
  judge,
  rssFigures,
  tailFigures,
  type DriftFigures,
  type FdFigures,
  type RssFigures,
  type Sample,
  type TailFigures,
  type Target,
} from './verdict.ts';
import type { TokenEndpointCounts } from '../token-endpoint.ts';
import type { UpstreamCounts } from '../upstream.ts';

export interface SoakRunOptions extends SoakOptions {
  /** The keyway CLI to run (dist/cli/main.js), or undefined for src/cli/main.ts. */
  cli: string | undefined;
  /** Warm-up at the full rate before the measured run (JIT, first refresh, first leaves). */
  warmupMs: number;
}

/** A window line's worth, as it closes: the load's figures plus keyway's memory and descriptors. */
export interface WindowReport extends WindowStats {
  rssMiB: number;
  /** Of that, glibc's main-arena heap (probe.ts says why it is worth watching). */
  heapMiB: number;
  fds: number;
  /** Refreshes the token endpoint answered during the window. */
  refreshes: number;
  /** CPU use during the window, in % of one core: keyway, and this process (client and upstreams). */
  keywayCpuPct: number;
  benchCpuPct: number;
  /** Set on the window in which the soak's new hosts reached keyway's leaf cache size (it is full from then on). */
  leafCacheFull?: number | undefined;
}

export interface SoakReport {
  options: SoakRunOptions;
  keyway: { pid: number; runtime: string; rssAfterStartMiB: number };
  warmup: { seconds: number; ok: number; errors: Record<string, number>; p99Ms: number };
  load: Omit<LoadResult, 'windows'>;
  windows: WindowReport[];
  /** Achieved good answers per second over the run, against `options.rate`. */
  okPerS: number;
  cpu: CpuFigures;
  newHosts: number;
  tokenEndpoint: TokenEndpointCounts;
  upstream: UpstreamCounts;
  rss: RssFigures;
  /** RSS over the last 10 minutes (runs of 20 minutes or more). */
  tail: TailFigures | undefined;
  /** When the leaf cache filled (seconds into the load), if it did. */
  leafCacheFullAtS: number | undefined;
  drift: DriftFigures;
  fds: FdFigures;
  /** Every error, warm-up included. */
  errors: Record<string, number>;
  targets: Target[];
  pass: boolean;
}

/** CPU over the run: the share of one core each side got, and what one request cost it. */
export interface CpuFigures {
  keywayCorePct: number;
  benchCorePct: number;
  keywayMsPerRequest: number;
  /** The client and the upstreams together (this process). */
  benchMsPerRequest: number;
}

export interface SoakHooks {
  onStarted?(info: SoakReport['keyway']): void;
  onWindow?(window: WindowReport): void;
}

const DRAIN_MS = 35_000; // past the client's 30 s header and body timeouts
const SETTLE_MS = 15_000;

async function closeDispatcher(d: Dispatcher): Promise<void> {
  const closed = d.close().then(
    () => true,
    () => false,
  );
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref());
  if (!(await Promise.race([closed, timeout]))) await d.destroy().catch(() => undefined);
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const merge = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
  const out = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
};

export async function runSoak(options: SoakRunOptions, hooks: SoakHooks = {}): Promise<SoakReport> {
  const maxNewHosts = Math.ceil((options.warmupMs + options.durationMs) / options.newHostEveryMs) + 2;
  const world: World = await startWorld({ newHosts: maxNewHosts, tokenLifetimeS: options.tokenLifetimeS, cli: options.cli, wrap: options.wrap });
  // keyway must not outlive the run, even when its caller gives up on it (a test's timeout, a
  // watchdog's exit): killed when this process exits, and in any case once the run's bound is past.
  const pid = world.keyway.pid;
  const kill = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const killAtExit = () => {
    kill();
    rmSync(world.keyway.home, { recursive: true, force: true });
  };
  process.once('exit', killAtExit);
  const guard = setTimeout(kill, options.warmupMs + options.durationMs + DRAIN_MS * 2 + SETTLE_MS * 2 + 60_000);
  guard.unref();
  try {
    const probe = procProbe(pid);
    const keyway = { pid, runtime: world.keyway.runtime(), rssAfterStartMiB: probe.rssMiB() };
    const fdsAfterStart = probe.fds();
    hooks.onStarted?.(keyway);
    const port = world.servers.upstreamPort;
    const mixPlan = { newHostEveryMs: options.newHostEveryMs, oauthEvery: options.oauthEvery, maxNewHosts };

    // Warm-up: the same mix at the same rate, on the connections the run goes on with. It climbs to
    // the full rate over its first half: keyway runs without V8's mid-tier compiler (its runtime
    // settings), so a cold process meets a step to full rate with unoptimised code. The run keeps
    // its connections (client to keyway, keyway to the upstream): closing them in between sent the
    // run's first second 64 new client handshakes and as many upstream ones at once, which the
    // generator counted as hundreds of overloads, a cold start the warm-up is there to leave out.
    // Descriptors are judged against the figure right after start, before any connection.
    const warmMix = mix(port, mixPlan);
    const dispatcher = world.route.dispatcher(options.connections);
    const warm = await runOpenLoop({
      ...options,
      durationMs: options.warmupMs,
      rampMs: options.warmupMs / 2,
      windowMs: options.warmupMs,
      drainMs: DRAIN_MS,
      pick: warmMix.pick,
      send: sender(world.route, dispatcher),
    });

    const runMix = mix(port, mixPlan, warmMix.hostsUsed());
    const samples: Sample[] = [];
    const loadStart = performance.now();
    const sample = () => samples.push({ tS: (performance.now() - loadStart) / 1000, rssMiB: probe.rssMiB(), fds: probe.fds() });
    // Bounded by the run: one reading a second, cleared below.
    const sampler = setInterval(sample, 1000);
    const windows: WindowReport[] = [];
    let leafCacheFullAtS: number | undefined;
    let refreshesSeen = world.servers.latest().token.refreshed;
    let cpuSeen = { at: performance.now(), keyway: probe.cpuS(), bench: cpuSeconds() };
    const cpuAtStart = cpuSeen;
    let load: LoadResult;
    try {
      load = await runOpenLoop({
        ...options,
        drainMs: DRAIN_MS,
        pick: runMix.pick,
        send: sender(world.route, dispatcher),
        onWindow: (w) => {
          const refreshed = world.servers.latest().token.refreshed;
          const cpu = { at: performance.now(), keyway: probe.cpuS(), bench: cpuSeconds() };
          const pct = (used: number) => (used / ((cpu.at - cpuSeen.at) / 1000)) * 100;
          const report: WindowReport = {
            ...w,
            rssMiB: probe.rssMiB(),
            heapMiB: probe.heapMiB(),
            fds: probe.fds(),
            refreshes: refreshed - refreshesSeen,
            keywayCpuPct: pct(cpu.keyway - cpuSeen.keyway),
            benchCpuPct: pct(cpu.bench - cpuSeen.bench),
          };
          // One new host a second: the leaf cache is full once that many were minted (the secret caches,
          // a handful of grants here, are full from the first seconds).
          if (leafCacheFullAtS === undefined && runMix.hostsUsed() >= DEFAULT_MAX_LEAVES) {
            leafCacheFullAtS = w.endS;
            report.leafCacheFull = DEFAULT_MAX_LEAVES;
          }
          refreshesSeen = refreshed;
          cpuSeen = cpu;
          windows.push(report);
          hooks.onWindow?.(report);
        },
      });
    } finally {
      clearInterval(sampler);
    }
    const rssAtEnd = probe.rssMiB();
    const cpuAtEnd = { at: performance.now(), keyway: probe.cpuS(), bench: cpuSeconds() };
    const loadSeconds = (cpuAtEnd.at - cpuAtStart.at) / 1000;
    const cpu: CpuFigures = {
      keywayCorePct: ((cpuAtEnd.keyway - cpuAtStart.keyway) / loadSeconds) * 100,
      benchCorePct: ((cpuAtEnd.bench - cpuAtStart.bench) / loadSeconds) * 100,
      keywayMsPerRequest: ((cpuAtEnd.keyway - cpuAtStart.keyway) * 1000) / load.completed,
      benchMsPerRequest: ((cpuAtEnd.bench - cpuAtStart.bench) * 1000) / load.completed,
    };
    const peakFds = Math.max(probe.fds(), ...samples.map((s) => s.fds), ...windows.map((w) => w.fds));

    // Drain: the client goes away, the upstreams drop idle connections; keyway must let go of all of them.
    const closing = performance.now();
    await closeDispatcher(dispatcher);
    await world.servers.closeIdle();
    const settled = await waitForFds(probe, fdsAfterStart, SETTLE_MS);

    const rss = rssFigures(samples, options.durationMs, rssAtEnd);
    const drift = driftFigures(windows, options.durationMs);
    const fds: FdFigures = {
      afterStart: fdsAfterStart,
      baseline: fdsAfterStart,
      peakDuringLoad: peakFds,
      afterDrain: settled.fds,
      settledMs: performance.now() - closing,
    };
    // A refresh storm (a rotated refresh token used twice) is keyway's error even if no request failed.
    const counts = await world.servers.counts();
    const tokenErrors: Record<string, number> = counts.token.invalidGrant > 0 ? { 'token endpoint: invalid_grant': counts.token.invalidGrant } : {};
    const errors = merge(merge(warm.errors, load.errors), tokenErrors);
    const tail = tailFigures(samples, options.durationMs, rssAtEnd);
    const targets = judge({ errors, rss, drift, fds, tail });
    const { windows: _omit, ...loadFigures } = load;
    return {
      options,
      keyway,
      warmup: { seconds: warm.seconds, ok: warm.ok, errors: warm.errors, p99Ms: warm.latencyMs.p99 },
      load: loadFigures,
      windows,
      okPerS: load.ok / (options.durationMs / 1000),
      cpu,
      newHosts: runMix.hostsUsed() - warmMix.hostsUsed(),
      tokenEndpoint: counts.token,
      upstream: counts.upstream,
      rss,
      tail,
      leafCacheFullAtS,
      drift,
      fds,
      errors,
      targets,
      pass: targets.every((t) => t.pass),
    };
  } catch (err) {
    const tail = world.keyway.output();
    throw new Error(`soak failed: ${(err as Error).message}\nkeyway output (last lines):\n${tail}`, { cause: err });
  } finally {
    clearTimeout(guard);
    await world.stop();
    process.off('exit', killAtExit);
  }
}
