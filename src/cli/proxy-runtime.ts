// The runtime settings `keyway start` runs under, in one place: `npm start`, the Docker image, a
// global install and `npm run bench` all get them, because the proxy applies them to itself.
//
// Why each one (figures from `npm run bench` and heaptrack on these 2-core machines):
// - --max-semi-space-size=4, --max-old-space-size=128: V8's defaults on a large host let the heap
//   grow to hundreds of MiB of RSS under load. The young generation still gets some room: a
//   request's objects live a few milliseconds, and with 2 MiB semi-spaces (the setting before) those
//   in flight at each scavenge were promoted, then collected by a full mark-compact every few tens
//   of milliseconds. s2 (64 connections, in turns, medians of 4): 2 MiB ~195 µs of CPU per request,
//   108 MiB RSS after; 4 MiB ~171 µs, 112.5 MiB; 8 MiB ~148 µs, 120 MiB. After s3-s5 (1 MiB bodies,
//   then 200 new hosts) 8 MiB left 186 MiB of RSS against 147 with 4 and 138 with 2: 4 it is.
// - --no-maglev: V8's mid-tier compiler speeds up warm-up, which a proxy that runs for days does not
//   need; hot code still reaches TurboFan. Its compiled code, compiler memory and the pages of its own
//   code in the node binary cost ~13 MiB of RSS after s1+s2, with the same req/s (A/B, 5 rounds twice).
// - --liftoff-only: undici parses HTTP with llhttp compiled to WebAssembly. Under load V8 re-compiles
//   its one huge function with the optimizing compiler, whose ~15 MiB of compiler memory the
//   allocator then keeps for the life of the process. The baseline compiler's code parses as fast
//   here (s2 and s3 unchanged in A/B runs) and costs no such memory.
// - MALLOC_ARENA_MAX=2 and fixed trim/mmap thresholds (glibc; ignored elsewhere): V8's background
//   threads each get a malloc arena that keeps what they freed, and glibc's adaptive thresholds keep
//   freed TLS buffers in the heap; ~5-10 MiB less RSS after load.
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--max-old-space-size=128', '--no-maglev', '--liftoff-only'];
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
  const args = [process.execPath, ...PROXY_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)];
  const env: NodeJS.ProcessEnv = { ...PROXY_ENV, ...process.env, [RUNTIME_VARIABLE]: 'tuned' };
  try {
    process.execve(process.execPath, args, env);
  } catch {
    // Not supported here: run as we are.
  }
}
