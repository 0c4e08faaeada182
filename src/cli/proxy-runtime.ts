// The runtime settings `keyway start` runs under, in one place: `npm start`, the Docker image, a
// global install and `npm run bench` all get them, because the proxy applies them to itself.
//
// Why each one, in a line (the measurements behind them: docs/perf/README.md, "Runtime settings"):
// - --max-semi-space-size=4, --max-old-space-size=128: a heap bounded for a small sidecar, with a
//   young generation large enough that a request's short-lived objects die young.
// - --no-maglev: Maglev makes a fresh process's first thousands of requests cheaper still (s2's
//   first 3,000 after start: 230 against 353 µs a request), but its compiler's memory stays: RSS +20
//   to +23 MiB from the first burst on, whatever its threads, inlining or thresholds (issue 92).
// - --liftoff-only: undici's WebAssembly HTTP parser stays on the baseline compiler, as fast here,
//   without the optimizing compiler's memory kept for the life of the process.
// - --no-sparkplug: no baseline machine code between the interpreter and TurboFan (issue 64: -1.5
//   MiB of RSS). Without the warm-up (warm-up/) Sparkplug made a fresh process's first requests
//   ~12% cheaper; with it, RSS +2.6 MiB and the long round 8% dearer (issue 92, bench/burst.ts).
// - TurboFan sooner (--invocation-count-for-turbofan=500, --minimum-invocations-after-ic-update=100;
//   V8's 3,000 and 500): the warm-up's few thousand requests, and an agent's first, reach optimised
//   code. With the warm-up, against V8's thresholds: s2's first 3,000 requests after start 0.82x the
//   CPU, the long round after them 0.91x, RSS +1.7 MiB (issue 92; docs/perf/short-rounds.md).
// - --no-concurrent-recompilation: TurboFan compiles on the main thread. Its compiler memory then
//   comes from the main arena, which gives it back, instead of a background thread's, which kept it:
//   RSS after s2 -2.2 MiB, CPU per request unchanged (0.95-0.97x, 4 fresh starts); most compiles
//   now happen in the warm-up, before the proxy serves (issue 92).
// - --expose-gc: a body's dead Buffers are collected as they pile up (process/buffer-reclaim.ts).
// - MALLOC_ARENA_MAX=2 and fixed trim/mmap thresholds (glibc; ignored elsewhere): freed memory goes
//   back to the system instead of staying in per-thread arenas.
// Measured and not taken (issue 64, RSS after s2 with bench/memory.ts): fewer V8 or libuv threads
// and one malloc arena (within 2 MiB: threads are not where the memory is), --single-threaded-gc
// (+50 MiB), 2 MiB semi-spaces (-2 MiB for ~14% more CPU per request), bytecode flushed after 5 s
// unused (--flush-code-based-on-time --bytecode-old-time=5: -1.4 to -2.1 MiB, CPU not shown free),
// scavenges on the main thread alone (--no-parallel-scavenge: -1.3 MiB, CPU per request 1.055x).
// What did come down was code kept loaded: prom-client until a scrape, AWS's signer, two-byte module sources.
// Also measured, not taken (docs/perf/breakdown.md, twelfth pass): MALLOC_MMAP_THRESHOLD_=16384 (the
// 16 KiB buffers of TLS records read mapped apart, and every larger allocation with them: RSS after
// s5 -7 to -10 MiB, s2 CPU per request +4%).
import { inSingleExecutable, nodeOptionsArgument } from '../process/own-program.ts';

export const PROXY_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=4',
  '--max-old-space-size=128',
  '--no-maglev',
  '--liftoff-only',
  '--no-sparkplug',
  '--invocation-count-for-turbofan=500',
  '--minimum-invocations-after-ic-update=100',
  '--no-concurrent-recompilation',
  '--expose-gc',
];
export const PROXY_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_TRIM_THRESHOLD_: '131072',
  MALLOC_MMAP_THRESHOLD_: '131072',
};

/** Set on the re-executed process; `as-is` skips the re-execution altogether. */
export const RUNTIME_VARIABLE = 'KEYWAY_RUNTIME';

/**
 * Replaces this process (same pid, same stdio) with one running under PROXY_NODE_FLAGS and PROXY_ENV,
 * once. Allocator settings are read when a process starts, so they cannot be applied any later.
 * Flags and variables the user gave win: their node options come after ours, and a MALLOC_* already
 * set is kept. Returns only when nothing was done: already tuned, opted out with KEYWAY_RUNTIME=as-is,
 * or process.execve unavailable (Windows, Node before 22.15).
 */
export function reexecWithProxyRuntime(): void {
  const mode = process.env[RUNTIME_VARIABLE];
  if (mode === 'tuned' || mode === 'as-is' || typeof process.execve !== 'function') return;
  // The single executable takes Node's options as one argument, and its argv[1] is how it was
  // invoked rather than a script (process/own-program.ts).
  // Ours first, the user's after (theirs win); the single executable's own (scripts/release/sea.mjs) once.
  const nodeOptions = [...PROXY_NODE_FLAGS, ...process.execArgv.filter((option) => !PROXY_NODE_FLAGS.includes(option))];
  const args = inSingleExecutable()
    ? [process.execPath, ...nodeOptionsArgument(nodeOptions), ...process.argv.slice(2)]
    : [process.execPath, ...nodeOptions, ...process.argv.slice(1)];
  const env: NodeJS.ProcessEnv = { ...PROXY_ENV, ...process.env, [RUNTIME_VARIABLE]: 'tuned' };
  try {
    process.execve(process.execPath, args, env);
  } catch {
    // Not supported here: run as we are.
  }
}
