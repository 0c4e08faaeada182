// Notices at once when the audit log's file or folder is replaced or removed, instead of at the
// next failed append (up to a batch later, while requests keep being injected). inotify reports
// the change within the same event-loop turn that a request would take, so a request that arrives
// after such a fault is refused before anything is sent. A full disk cannot be seen this way: room.ts
// watches the space left instead, and refuses before it runs out.

import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface LogWatch {
  close(): void;
}

/**
 * Watches the folder holding `path` and calls `onFault` when the folder is gone or no longer a
 * folder, or `path` exists and is not a regular file. An absent file is normal (between a rotation
 * and the next append) and is not a fault. Calls `onFault` at most once; watch again after recovery.
 */
export function watchLogPath(path: string, onFault: () => void): LogWatch {
  let watcher: FSWatcher | undefined;
  let fired = false;
  const fire = () => {
    if (fired) return;
    fired = true;
    watcher?.close();
    onFault();
  };
  try {
    // Only names appearing or going away matter (every append is a 'change' event, and the lock's
    // folder comes and goes with each batch): the log file itself, or the watched folder (inotify
    // reports the folder's own name when it is moved or deleted). Not persistent: the watch never
    // keeps the process alive.
    const file = basename(path);
    const folder = basename(dirname(path));
    watcher = watch(dirname(path), { persistent: false }, (event, name) => {
      if (event !== 'rename' || (name !== null && name !== file && name !== folder)) return;
      if (!pathLooksWritable(path)) fire();
    });
    watcher.on('error', fire);
  } catch {
    fire();
  }
  return { close: () => watcher?.close() };
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
