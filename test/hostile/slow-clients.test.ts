import { randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome } from '../helpers/keyway.ts';
import type { SlowPhase, SlowTarget } from '../helpers/slow-client.ts';
import type { DriverResult } from './slow-client-driver.ts';
import { slack } from '../helpers/load.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { report, scale } from './scale.ts';

// Slow clients: many connections that stop in every phase (idle after CONNECT, a partial
// ClientHello, a partial request head, a stalled body, an idle kept-alive connection) must each be
// closed within its timeout + 1 s, while a steady client keeps being served (0 errors, p99 near its
// baseline), and keyway's descriptors and memory come back. keyway runs as its own process (the
// real CLI), so its descriptors and RSS are its own, not the test runner's.

const SLOW_CONNECTIONS = scale(200, 1_000);
const STEADY_RATE = scale(50, 200); // requests per second
const BASELINE_MS = scale(3_000, 10_000);
/**
 * Slow connections opened per second. Opening costs keyway a TLS handshake for most phases, CPU
 * the steady client then waits for; paced, the suite measures what holding them costs.
 */
const OPEN_RATE = scale(50, 100);

// Long enough that the steady client's own handshakes are not cut on a machine whose two cores are
// shared (load averages above 10 were seen), and that the connections pile up (about rate x timeout).
const TIMEOUTS_MS: Record<SlowPhase, number> = {
  'connect-idle': 2_000, // first_byte
  'partial-hello': 3_000, // handshake
  'partial-head': 3_000, // headers
  'stalled-body': 3_000, // body_stall
  'idle-keepalive': 3_000, // idle
};
const DRIVER = fileURLToPath(new URL('./slow-client-driver.ts', import.meta.url));
/** The bound: closed within the timeout + 1 s. Reported; counted against a looser bound. */
const SLACK_MS = 1_000;
/**
 * What fails the suite: a close this late means a missing timeout, not a busy machine. 3 s idle,
 * stretched by the load measured as the suite starts (a busy machine runs timers late), at most 10 s.
 */
const HARD_SLACK_MS = slack(3_000, 10_000);

interface SteadyResult {
  sent: number;
  errors: number;
  firstError: string | undefined;
  p50: number;
  p99: number;
  /** [start (performance.now()), latency ms] of every request answered 200. */
  samples: Array<[number, number]>;
}

describe('slow clients', () => {
  let upstream: TestUpstream;
  let keyway: ChildProxy;
  let target: SlowTarget;
  let steadyClient: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    const home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: {
          upstream_ca: [TLS_FIXTURES.caPath],
          allow_networks: ['127.0.0.0/8'],
          hosts: { 'api.example.test': '127.0.0.1' },
          timeouts: { first_byte: '2s', handshake: '3s', headers: '3s', idle: '3s', body_stall: '3s' },
        },
        grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      }),
    );
    keyway = await startChildProxy({ home, env: cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: CANARY }) });
    const ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
    target = { proxyPort: keyway.port, authority: `api.example.test:${upstream.port}`, servername: 'api.example.test', ca };
    // A few kept-alive connections, as a real client pool: past them requests queue (and count in
    // the latency) instead of opening a new CONNECT and handshake each when keyway is slow.
    steadyClient = new ProxyAgent({ uri: `http://127.0.0.1:${keyway.port}`, requestTls: { ca }, connections: 8 });
  });
  afterAll(async () => {
    await steadyClient?.close();
    expect(await keyway?.stop()).toBe(0);
    await upstream?.close();
  });

  /** Open-loop requests at `rate` per second for `ms`; latencies of the ones that answered 200. */
  async function steady(rate: number, ms: number): Promise<SteadyResult> {
    const samples: Array<[number, number]> = [];
    let errors = 0;
    let firstError: string | undefined;
    const inFlight: Array<Promise<void>> = [];
    const started = performance.now();
    for (let i = 0; i < Math.ceil((rate * ms) / 1000) && performance.now() - started < ms + 5_000; i++) {
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t0 = performance.now();
      inFlight.push(
        request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: steadyClient, headersTimeout: 10_000, bodyTimeout: 10_000 }).then(
          async (res) => {
            await res.body.text();
            if (res.statusCode === 200) samples.push([t0, performance.now() - t0]);
            else {
              errors++;
              firstError ??= `status ${res.statusCode}`;
            }
          },
          (err: Error) => {
            errors++;
            firstError ??= `${err.name}: ${err.message}`;
          },
        ),
      );
    }
    await Promise.all(inFlight);
    const all = percentiles(samples.map(([, ms]) => ms));
    return { sent: inFlight.length, errors, firstError, p50: all.p50, p99: all.p99, samples };
  }

  it(`closes ${SLOW_CONNECTIONS} slow connections in time while a steady client is served`, async () => {
    const pid = keyway.child.pid!;
    await steady(STEADY_RATE, 1_000); // warm-up: leaves, contexts, pooled upstream connections
    const cpu0 = cpuMs(pid);
    const baseline = await steady(STEADY_RATE, BASELINE_MS);
    const cpuBaseline = cpuMs(pid) - cpu0;
    const fdsBefore = countFds(pid);
    const rssBefore = rssMiB(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 200);

    // The slow connections, opened at a steady pace in every phase by their own process, each
    // timed from the moment it reached its phase to the moment keyway closed it.
    const openingStarted = performance.now();
    const openingEnded = openingStarted + (SLOW_CONNECTIONS / OPEN_RATE) * 1000;
    const driver = spawn(
      process.execPath,
      [
        DRIVER,
        JSON.stringify({ target, count: SLOW_CONNECTIONS, ratePerSecond: OPEN_RATE, timeoutsMs: TIMEOUTS_MS, slackMs: SLACK_MS, hardSlackMs: HARD_SLACK_MS }),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let driverOut = '';
    driver.stdout.on('data', (c: Buffer) => (driverOut += c.toString()));
    const killer = setTimeout(() => driver.kill('SIGKILL'), (SLOW_CONNECTIONS / OPEN_RATE) * 1000 + 30_000);
    const slowDone = once(driver, 'exit').then(() => {
      clearTimeout(killer);
      return JSON.parse(driverOut) as DriverResult;
    });
    // The steady client runs while the slow connections are opened and held.
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpu1 = cpuMs(pid);
    const underLoad = await steady(STEADY_RATE, (SLOW_CONNECTIONS / OPEN_RATE) * 1000 + 2_000);
    const cpuUnderLoad = cpuMs(pid) - cpu1;
    lag.disable();
    const slow = await slowDone;
    clearInterval(sampler);

    // Descriptors back to where they were once the last kept-alive connections have timed out.
    const deadline = Date.now() + 10_000;
    let fdsAfter = countFds(pid);
    while (fdsAfter > fdsBefore + 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      fdsAfter = countFds(pid);
    }
    const rssAfter = rssMiB(pid);
    report('slow-clients', {
      slow_connections: SLOW_CONNECTIONS,
      opened: slow.opened,
      open_rate_per_s: OPEN_RATE,
      peak_held_at_once: slow.peakHeld,
      closed_past_timeout_plus_1s: slow.pastSlack,
      closed_past_timeout_plus_3s: slow.pastHardSlack.length,
      worst_close_past_timeout_ms: slow.worstPastTimeoutMs,
      steady_rate: STEADY_RATE,
      baseline: { sent: baseline.sent, errors: baseline.errors, p50_ms: baseline.p50, p99_ms: baseline.p99 },
      under_load: { sent: underLoad.sent, errors: underLoad.errors, p50_ms: underLoad.p50, p99_ms: underLoad.p99 },
      p99_ratio: round(underLoad.p99 / baseline.p99),
      // The same requests split: while slow connections were being opened (keyway doing their TLS
      // handshakes), and after, while the last of them were only held.
      while_opening: percentiles(underLoad.samples.filter(([t]) => t < openingEnded).map(([, ms]) => ms)),
      while_held: percentiles(underLoad.samples.filter(([t]) => t >= openingEnded + 200 && t < openingEnded + 2_000).map(([, ms]) => ms)),
      fds: { before: fdsBefore, after: fdsAfter },
      rss_mib: { before: rssBefore, peak: rssPeak, after: rssAfter, growth_peak: round(rssPeak - rssBefore), growth_after: round(rssAfter - rssBefore) },
      nofile_limit: nofileLimit(pid),
      load_average: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      first_steady_error: underLoad.firstError ?? null,
      open_failures_sample: [...new Set(slow.openFailures)].slice(0, 3),
      keyway_cpu_ms: { baseline: cpuBaseline, under_load: cpuUnderLoad },
      test_loop_lag_p99_ms: round(lag.percentile(99) / 1e6),
    });

    expect(slow.openFailures.slice(0, 5)).toEqual([]);
    expect(slow.pastHardSlack.slice(0, 5)).toEqual([]);
    expect(baseline.errors).toBe(0);
    expect(underLoad.errors, underLoad.firstError).toBe(0);
    // The ratio is a reported figure (this machine's two cores are shared); only a gross
    // degradation fails the suite.
    // 2 s floor on an idle machine, stretched by the measured load (a latency bound is about speed).
    expect(underLoad.p99).toBeLessThan(Math.max(20 * baseline.p99, slack(2_000, 10_000)));
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore + 2);
    expect(rssPeak - rssBefore).toBeLessThan(50);
  });
});

function percentiles(latencies: number[]): { n: number; p50: number; p99: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  return { n: sorted.length, p50: round(at(50)), p99: round(at(99)) };
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in clock ticks of 10 ms
}

function countFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return round(kb / 1024);
}

function nofileLimit(pid: number): string {
  try {
    return execFileSync('prlimit', ['--pid', String(pid), '--nofile', '--output=SOFT,HARD', '--noheadings'], { encoding: 'utf8' })
      .trim()
      .replace(/\s+/g, '/');
  } catch {
    return 'unknown';
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
