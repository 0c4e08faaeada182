import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { KEYWAY_CACHE } from '../contain/sandbox.ts';
import { pruneCompileCache } from './compile-cache-prune.ts';

// V8's compile cache (Node 22.1 and later): the code compiled for keyway's modules is kept on disk
// and read back by the next run, which then parses less. An agent that wraps each tool call in
// `keyway run --contain` loads the whole proxy every time (measured, `keyway run --contain -- true`:
// 775 -> 699 ms of CPU, 587 -> 539 ms wall; bench:startup in docs/perf/startup.md). The cache is
// code keyway runs, so it lives only where nobody but this user can write: ~/.cache/keyway, every
// folder up to / owned by this user or root and writable by no one else (a sudo that kept another
// user's HOME finds theirs and uses none), and hidden from a contained command like keyway's home
// (contain/sandbox.ts KEYWAY_CACHE), which could otherwise plant code there through its overlay.
// Node ignores it under NODE_DISABLE_COMPILE_CACHE; a cache that cannot be written goes unused.
// `keyway start` runs without it (cli/main.ts): reading a cache back makes the code of every function
// the cache holds at once, and a proxy that runs for days keeps it, to save tens of milliseconds
// once (bench/memory.ts, RSS after s2: 102.8-103.0 against 104.7-104.8 MiB, 7 runs each).
// `keyway run --contain` starts its proxy inside the `run` process, which keeps the cache.
// What Node leaves in it is pruned once a day (compile-cache-prune.ts).

/**
 * Turns the compile cache on for the modules loaded from now on, where a safe folder for it exists;
 * returns that folder, or undefined.
 */
export function useCompileCache(env: NodeJS.ProcessEnv, enable: (dir: string) => unknown = enableCompileCache): string | undefined {
  const uid = process.getuid?.();
  const home = env['HOME'];
  if (uid === undefined || typeof enable !== 'function' || home === undefined || !isAbsolute(home)) return undefined;
  const dir = join(home, KEYWAY_CACHE, 'compile-cache');
  try {
    // Only under a cache folder the user has already: keyway makes its own in it, never ~/.cache
    // itself (a service user's or a test's fresh home gets no 4 MiB of cache in each).
    if (!statSync(join(home, '.cache')).isDirectory()) return undefined;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!ownedAllTheWay(dir, uid)) return undefined;
    try {
      pruneCompileCache(dir);
    } catch {
      // Pruned next time: a folder another keyway process is writing into may not empty at once.
    }
    enable(dir);
    return dir;
  } catch {
    return undefined; // no cache: the run is only slower
  }
}

/** `dir` and every folder above it: this user's or root's, and writable by no one else (a sticky root folder such as /tmp aside). */
function ownedAllTheWay(dir: string, uid: number): boolean {
  for (let path = dir; ; path = dirname(path)) {
    const st = lstatSync(path);
    if (!st.isDirectory()) return false;
    const owner = st.uid === uid || st.uid === 0;
    const othersWrite = (st.mode & 0o022) !== 0;
    const stickyRoot = st.uid === 0 && (st.mode & 0o1000) !== 0;
    if (!owner || (othersWrite && !stickyRoot)) return false;
    if (path === dirname(path)) return true;
  }
}
