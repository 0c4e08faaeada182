import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplyRefused, applyChange } from './apply-change.ts';
import { type KeptChange, type KeptRecord, type OverlayLayer, type RunRecord, removeScratch, runId, SCRATCH_PREFIX, settleOverlays } from './overlay.ts';

// `keyway contain review`: the contained runs whose changes were kept aside (contain/overlay.ts),
// and those that never reached their end (keyway killed while the command ran: nothing of theirs
// reached the host). Each is a scratch folder in /var/tmp (or /tmp) that only its owner reads.

export interface ReviewedRun {
  id: string;
  scratch: string;
  record: RunRecord;
  /** undefined: the run did not settle (its process is gone, or it still runs). */
  kept: KeptChange[] | undefined;
  running: boolean;
}

const PLACES = ['/var/tmp', '/tmp'];

/** The runs this user may review, oldest first. */
export function reviewableRuns(): ReviewedRun[] {
  const runs: ReviewedRun[] = [];
  const uid = process.getuid?.();
  for (const place of PLACES) {
    let names: string[];
    try {
      names = readdirSync(place).filter((name) => name.startsWith(SCRATCH_PREFIX));
    } catch {
      continue;
    }
    for (const name of names) {
      const scratch = join(place, name);
      try {
        const stat = lstatSync(scratch);
        // Only a folder of this user's own (root reviews every user's: its runs' commands are nobody or the sudo user).
        if (!stat.isDirectory() || (uid !== 0 && stat.uid !== uid)) continue;
        const record = JSON.parse(readFileSync(join(scratch, 'run.json'), 'utf8')) as RunRecord;
        if (record.v !== 1) continue;
        const keptFile = join(scratch, 'kept.json');
        const kept = existsSync(keptFile) ? (JSON.parse(readFileSync(keptFile, 'utf8')) as KeptRecord).kept : undefined;
        runs.push({ id: runId(scratch), scratch, record, kept, running: kept === undefined && isAlive(record.pid) });
      } catch {
        // Not a run's folder, or one being made: not listed.
      }
    }
  }
  return runs.sort((a, b) => a.record.startedMs - b.record.startedMs);
}

/** Whether the process that would settle a run still runs (a zombie does not: it settles nothing). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may hold any character.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function layersOf(run: ReviewedRun): OverlayLayer[] {
  return run.record.roots.map((root, i) => ({ root, upper: join(run.scratch, String(i), 'upper'), lower: root }));
}

/**
 * A run that never settled, settled now as its exit would have: what the judge admits is applied,
 * the rest kept aside. Its deletions are its whiteouts (the overlay's view is gone).
 */
export function settleLate(run: ReviewedRun): { applied: number; kept: KeptChange[] } {
  return settleOverlays(run.scratch, layersOf(run), run.record, false);
}

/** Puts every kept change of a settled run in place (the person has reviewed them); the run is gone after. */
export function applyKept(run: ReviewedRun): { applied: number; failed: string[] } {
  const failed: string[] = [];
  let applied = 0;
  const layers = layersOf(run);
  for (const change of run.kept ?? []) {
    const layer = layers.find((l) => l.root === change.root);
    // A FIFO, socket or device is never put in place: it goes with the run.
    if (layer === undefined || change.rel === '' || change.kind === 'other') continue;
    try {
      applyChange(layer.upper, layer.root, change.rel, change.kind);
      applied++;
    } catch (err) {
      failed.push(
        `${join(change.root, change.rel)}: ${err instanceof ApplyRefused ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message)}`,
      );
    }
  }
  if (failed.length === 0) removeScratch(run.scratch);
  return { applied, failed };
}

export function discard(run: ReviewedRun): void {
  removeScratch(run.scratch);
}
