// audit.min_retention's hold: rotated files past audit.keep that rotation kept because they were
// written too recently to delete (file/log-files.ts), and the one sentence the app log and /readyz say
// about it. A hold means lines arrive faster than keep x max_bytes can hold for min_retention: an
// agent flooding the log, or keep and max_bytes too small for the traffic. It is a warning, not a
// fault: keyway goes on serving, and the disk guard (file/room.ts) refuses injection if the disk fills.

import { formatDuration } from '../config/duration.ts';

/** Rotated files past `keep` that min_retention kept, as of the last rotation. */
export interface RetentionHold {
  files: number;
  bytes: number;
  /** How long ago the oldest of them was last written. */
  oldestAgeMs: number;
}

export function retentionWarning(hold: RetentionHold, minRetentionMs: number): string {
  return (
    `audit rotation keeps ${hold.files} file(s) (${hold.bytes} bytes) past audit.keep: written less than ` +
    `audit.min_retention (${formatDuration(minRetentionMs)}) ago, so not deleted; the log grows faster than ` +
    'audit.keep x audit.max_bytes holds (a flood of lines?) and uses more disk until they age'
  );
}

/** The app log's side of a hold: what the writer's onRetention is given. */
interface WarnLog {
  warn(fields: object, msg: string): void;
  info(msg: string): void;
}

/**
 * The writer's onRetention for the app log: warn when files start being held, and again each time
 * their number doubles (a flood rotates every few ms: a line per rotation would flood the app log
 * too); one line when none are held any more. /metrics and /readyz always show the current count.
 */
export function logRetention(log: WarnLog, keep: number, minRetentionMs: number): (hold: RetentionHold | null) => void {
  let warnedAt = 0;
  return (hold) => {
    if (hold === null) {
      if (warnedAt > 0) log.info('audit rotation: no file is kept past audit.keep by audit.min_retention any more');
      warnedAt = 0;
      return;
    }
    if (hold.files < 2 * warnedAt) return;
    warnedAt = hold.files;
    log.warn({ files: hold.files, bytes: hold.bytes, keep }, retentionWarning(hold, minRetentionMs));
  };
}
