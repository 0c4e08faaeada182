// Loaded into a keyway child with `node --import` (bench/agent-flood.ts): every 250 ms it writes
// the child's event-loop delay (max and p99 since the last line, in ms), its heap and external
// memory to the file named by KEYWAY_LOOP_PROBE, one JSON line each, so a bench can tell a blocked
// event loop from a queue a request waits in. Nothing is written when the variable is unset.
import { appendFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const file = process.env.KEYWAY_LOOP_PROBE;
if (file) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  // Garbage collection pauses since the last line: major (mark-compact) and minor (scavenge), in ms.
  let gc = { majorMs: 0, majorMax: 0, minorMs: 0, minorCount: 0, majorCount: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.majorMs += entry.duration;
        gc.majorMax = Math.max(gc.majorMax, entry.duration);
        gc.majorCount++;
      } else {
        gc.minorMs += entry.duration;
        gc.minorCount++;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  let cpuBefore = process.cpuUsage();
  let wallBefore = performance.now();
  const timer = setInterval(() => {
    const mem = process.memoryUsage();
    // The share of one core this process had since the last line: near 100, keyway itself is busy;
    // low while its event loop lags, the machine did not schedule it.
    const cpu = process.cpuUsage(cpuBefore);
    const wall = performance.now() - wallBefore;
    cpuBefore = process.cpuUsage();
    wallBefore = performance.now();
    const line = {
      at: Date.now(),
      cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
      maxMs: Math.round(delay.max / 1e5) / 10,
      p99Ms: Math.round(delay.percentile(99) / 1e5) / 10,
      heapMiB: Math.round(mem.heapUsed / 1048576),
      externalMiB: Math.round(mem.external / 1048576),
      rssMiB: Math.round(mem.rss / 1048576),
      gcMajorCount: gc.majorCount,
      gcMajorMs: Math.round(gc.majorMs),
      gcMajorMaxMs: Math.round(gc.majorMax),
      gcMinorCount: gc.minorCount,
      gcMinorMs: Math.round(gc.minorMs),
    };
    gc = { majorMs: 0, majorMax: 0, minorMs: 0, minorCount: 0, majorCount: 0 };
    delay.reset();
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 250);
  timer.unref();
}
