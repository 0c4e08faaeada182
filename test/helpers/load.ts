import { availableParallelism, loadavg } from 'node:os';

// Some tests bound a time that is about speed: keyway closes a connection within its timeout plus a
// little, notices a dead client within a probe interval plus a little. On a busy machine (a CI
// runner, the suite's own workers on 2 cores) timers fire and processes are scheduled late, and a
// correct keyway misses a bound fixed for an idle one. Those bounds take their slack from here: the
// slack stretched by how loaded the machine is now, measured, never less than the idle figure.

const MAX_FACTOR = 6;
let measured: { at: number; factor: number } | undefined;

/**
 * How many times slower than idle this machine runs a process now, from 1 (idle) to 6: the larger of
 * the 1-minute load average per core and a measurement, a 25 ms CPU-bound loop timed against the
 * CPU time this process was given for it (on a machine with spare cores the two are equal).
 * Measured at most once every 10 s (the loop's cost stays under 0.3% of a core).
 */
export function loadFactor(): number {
  const now = Date.now();
  if (measured && now - measured.at < 10_000) return measured.factor;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < 25) {
    // spin
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1_000;
  const share = cpuMs > 0 ? wallMs / cpuMs : MAX_FACTOR;
  const perCore = (loadavg()[0] ?? 0) / availableParallelism();
  const factor = Math.min(MAX_FACTOR, Math.max(1, share, perCore));
  measured = { at: Date.now(), factor };
  return factor;
}

/** `ms` of slack for a timing bound, stretched by the measured load (loadFactor), at most `max`. */
export function slack(ms: number, max = Number.POSITIVE_INFINITY): number {
  return Math.min(max, Math.round(ms * loadFactor()));
}
