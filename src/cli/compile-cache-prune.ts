import { lstatSync, readdirSync, rmdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Node never removes anything from a compile cache: it keeps a folder per Node version and set of V8
// flags, and in it a file per module it compiled. Every keyway or Node upgrade left the last one's
// files behind (2-4 MiB each; 92 MiB on a development machine). So, at most once a day (the age of
// a marker file), a run removes the files last written more than KEEP_DAYS ago and the folders
// that leaves empty. A file that old may still be in use: the next run that loads its module writes
// it again, once.

const KEEP_DAYS = 30;
const DAY_MS = 86_400_000;
const MARKER = '.pruned';

/**
 * Prunes `dir` (the compile cache, already checked as this user's alone) if the last prune was a day
 * ago or more. Returns how many files and folders it removed. Symbolic links are removed as
 * entries, never followed.
 */
export function pruneCompileCache(dir: string, now = Date.now()): number {
  const marker = join(dir, MARKER);
  const last = mtimeOf(marker);
  if (last !== undefined && now - last < DAY_MS) return 0;
  writeFileSync(marker, '', { mode: 0o600 });
  utimesSync(marker, now / 1000, now / 1000);
  const before = now - KEEP_DAYS * DAY_MS;
  let removed = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === MARKER) continue;
    const path = join(dir, entry.name);
    if (!entry.isDirectory()) {
      removed += removeIfOlder(path, before);
      continue;
    }
    const written = mtimeOf(path);
    const inside = readdirSync(path);
    let left = inside.length;
    for (const name of inside) {
      const gone = removeIfOlder(join(path, name), before);
      removed += gone;
      left -= gone;
    }
    // Emptied here, or empty and old: a folder just made (a run about to write into it) stays.
    if (left === 0 && (inside.length > 0 || (written !== undefined && written < before))) {
      rmdirSync(path);
      removed++;
    }
  }
  return removed;
}

function mtimeOf(path: string): number | undefined {
  try {
    return lstatSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** 1 if `path` (a file, a link, or a folder Node never makes here) was last written before `before`, and is now gone. */
function removeIfOlder(path: string, before: number): number {
  const mtime = mtimeOf(path);
  if (mtime === undefined || mtime >= before) return 0;
  rmSync(path, { recursive: true, force: true });
  return 1;
}
