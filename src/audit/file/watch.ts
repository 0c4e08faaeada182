// Notices, without traffic, when the audit log's file or folder is replaced or removed: /readyz then
// says the audit is unavailable, and keyway probes until the log can be written again. A request
// never waits for this watch: a write-ahead batch under a hold checks the path itself before it
// writes (append-now.ts), and every other batch opens the path anew. A full disk cannot be seen
// this way: room.ts watches the space left instead, and refuses before it runs out.
//
// A poll, not an inotify watch (fs.watch): inotify on the log's folder reports every append to the
// file as a change, which woke the event loop, read the inotify descriptor twice and ran a callback
// for each audit line, two per injected request. On s2 that was 3.7% of keyway's CPU per request
// (bench/ab.ts, 4 restarts, all four lower without it). Two stat calls every POLL_MS cost nothing
// that shows.

import { statSync } from 'node:fs';
import { dirname } from 'node:path';

/** How often an idle writer looks at its log's path. */
const POLL_MS = 100;

export interface LogWatch {
  close(): void;
}

/**
 * Looks at the folder holding `path` every POLL_MS and calls `onFault` when the folder is gone or no
 * longer a folder, or `path` exists and is not a regular file. An absent file is normal (between a
 * rotation and the next append) and is not a fault. Calls `onFault` at most once; watch again after
 * recovery. Never keeps the process alive.
 */
export function watchLogPath(path: string, onFault: () => void): LogWatch {
  if (!pathLooksWritable(path)) {
    onFault();
    return { close: () => undefined };
  }
  const timer = setInterval(() => {
    if (pathLooksWritable(path)) return;
    clearInterval(timer);
    onFault();
  }, POLL_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

/** The folder is a folder and the file, if present, a regular file (symbolic links followed). */
export function pathLooksWritable(path: string): boolean {
  try {
    if (!statSync(dirname(path)).isDirectory()) return false;
  } catch {
    return false;
  }
  try {
    return statSync(path).isFile();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}
