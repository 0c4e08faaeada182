import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplyRefused, applyChange } from './apply-change.ts';
import { keptDigest } from './kept-digest.ts';
import { type KeptChange, type KeptRecord, type OverlayLayer, type RunRecord, removeScratch, runId, settleOverlays } from './overlay.ts';

// `keyway contain review`: the contained runs whose changes were kept aside (contain/overlay.ts),
// and those that never reached their end (keyway killed while the command ran: nothing of theirs
// reached the host). What a run is (its folders, its scratch folder) is read only from the record
// keyway wrote in its own home when the run started (data/contain/ID.json), never from the scratch
// folder, which the command's uid owns: as root, applying what a scratch folder said would let any
// process of that uid (nobody) name the folders root writes into. The scratch folder's kept.json is
// read as data and checked: each change is inside one of the record's folders, by a relative path.

export interface ReviewedRun {
  id: string;
  scratch: string;
  record: RunRecord;
  /** undefined: the run did not settle (its process is gone, or it still runs). */
  kept: KeptChange[] | undefined;
  running: boolean;
  /** The digest of the kept changes `keyway contain review ID` last showed (contain/kept-digest.ts). */
  shown: string | undefined;
}

interface HomeRecord extends RunRecord {
  scratch: string;
  /** What a review kept aside of a run it settled late (nothing is written in the run's own folder then). */
  kept?: KeptChange[];
  /** The digest of what `keyway contain review ID` last showed: --apply puts in place only that. */
  shown?: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const KINDS: ReadonlySet<string> = new Set(['file', 'dir', 'symlink', 'deleted', 'other']);

function recordsFolder(home: string): string {
  return join(home, 'data', 'contain');
}

/** Said by `keyway run --contain` when the command's overlay is mounted, before the command runs. */
export function recordRun(home: string, scratch: string, record: RunRecord): void {
  const folder = recordsFolder(home);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  writeFileSync(join(folder, `${runId(scratch)}.json`), `${JSON.stringify({ ...record, scratch } satisfies HomeRecord)}\n`, { mode: 0o600 });
}

/** What a late settlement kept aside, beside the run's record in the home. */
function recordKept(home: string, scratch: string, kept: KeptChange[]): void {
  updateRecord(home, scratch, (record) => ({ ...record, kept, shown: undefined }));
}

/** The digest of what a review showed, beside the run's record in the home. */
function recordShown(home: string, scratch: string, shown: string): void {
  updateRecord(home, scratch, (record) => ({ ...record, shown }));
}

function updateRecord(home: string, scratch: string, change: (record: HomeRecord) => HomeRecord): void {
  const file = join(recordsFolder(home), `${runId(scratch)}.json`);
  const record = JSON.parse(readFileSync(file, 'utf8')) as HomeRecord;
  writeFileSync(file, `${JSON.stringify(change(record))}\n`, { mode: 0o600 });
}

/** The run's record gone (it settled with nothing kept, or was applied or discarded). */
export function forgetRun(home: string, scratch: string): void {
  rmSync(join(recordsFolder(home), `${runId(scratch)}.json`), { force: true });
}

/** The runs of this home, oldest first. */
export function reviewableRuns(home: string): ReviewedRun[] {
  const folder = recordsFolder(home);
  let names: string[];
  try {
    names = readdirSync(folder).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const runs: ReviewedRun[] = [];
  for (const name of names) {
    let record: HomeRecord;
    try {
      record = JSON.parse(readFileSync(join(folder, name), 'utf8')) as HomeRecord;
    } catch {
      continue;
    }
    if (record.v !== 1 || typeof record.scratch !== 'string' || !Array.isArray(record.roots)) continue;
    const scratch = record.scratch;
    if (!existsSync(join(scratch, 'run.json'))) {
      // Settled with nothing kept, or its folder removed by hand: nothing left to review.
      rmSync(join(folder, name), { force: true });
      continue;
    }
    const kept = record.kept !== undefined ? sanitized(record.kept, record.roots) : readKept(scratch, record.roots);
    const shown = typeof record.shown === 'string' ? record.shown : undefined;
    runs.push({ id: runId(scratch), scratch, record, kept, running: kept === undefined && isAlive(record.pid), shown });
  }
  return runs.sort((a, b) => a.record.startedMs - b.record.startedMs);
}

/** kept.json, each change checked to be inside one of the run's folders; undefined where there is none. */
function readKept(scratch: string, roots: readonly string[]): KeptChange[] | undefined {
  const file = join(scratch, 'kept.json');
  if (!existsSync(file)) return undefined;
  let kept: unknown;
  try {
    // The command's uid owns it: opened without following a link or waiting on a FIFO, and bounded.
    const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile() || stat.size > 16 * 1024 * 1024) return [];
      kept = (JSON.parse(readFileSync(fd, 'utf8')) as KeptRecord).kept;
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
  return sanitized(kept, roots);
}

function sanitized(kept: unknown, roots: readonly string[]): KeptChange[] {
  if (!Array.isArray(kept)) return [];
  return kept.filter(
    (k): k is KeptChange =>
      typeof k === 'object' &&
      k !== null &&
      roots.includes((k as KeptChange).root) &&
      safeRelative((k as KeptChange).rel) &&
      ((k as KeptChange).raw === undefined || (typeof (k as KeptChange).raw === 'string' && BASE64.test((k as KeptChange).raw!))) &&
      KINDS.has((k as KeptChange).kind) &&
      typeof (k as KeptChange).why === 'string',
  );
}

/** A relative path of named parts: no '..', '.', empty part or leading '/'. */
function safeRelative(rel: unknown): rel is string {
  return typeof rel === 'string' && rel !== '' && rel.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !part.includes('\0'));
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

function layersOf(run: ReviewedRun, scratch = run.scratch): OverlayLayer[] {
  return run.record.roots.map((root, i) => ({ root, upper: join(scratch, String(i), 'upper'), lower: root }));
}

/**
 * The run's scratch folder as this process may read it safely. Run as root, a run's scratch folder
 * belongs to the command's uid (nobody, or the user behind sudo), and any process of that uid can
 * swap a folder in it for a link while root walks it: so root reads none of it directly. tar, run
 * as that uid, packs it (links as links, never followed); root unpacks that into a folder of its
 * own, and reads only that. Anyone else reads their own folder as it is.
 */
function readableScratch(run: ReviewedRun): { folder: string; done(): void } {
  const owner = lstatSync(run.scratch);
  if (process.getuid?.() !== 0 || owner.uid === 0) return { folder: run.scratch, done: () => undefined };
  const packed = spawnSync('tar', ['-C', run.scratch, '-cf', '-', '--', ...run.record.roots.map((_, i) => `${i}/upper`)], {
    uid: owner.uid,
    gid: owner.gid,
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (packed.status !== 0) throw new Error(`cannot read ${run.scratch} as uid ${owner.uid}: ${String(packed.stderr).trim().split('\n')[0]}`);
  const staging = mkdtempSync(join(tmpdir(), 'keyway-review-'));
  const unpacked = spawnSync('tar', ['-C', staging, '-xf', '-', '--no-same-owner', '--no-same-permissions', '--no-overwrite-dir'], { input: packed.stdout });
  if (unpacked.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`cannot unpack ${run.scratch}: ${String(unpacked.stderr).trim().split('\n')[0]}`);
  }
  return { folder: staging, done: () => rmSync(staging, { recursive: true, force: true }) };
}

/** The scratch folder removed as its owner (as root, never walking a tree another uid can change). */
function removeAsOwner(run: ReviewedRun): void {
  const owner = lstatSync(run.scratch);
  if (process.getuid?.() !== 0 || owner.uid === 0) return removeScratch(run.scratch);
  spawnSync('sh', ['-c', 'chmod -R u+rwx -- "$1" 2>/dev/null; rm -rf -- "$1"', 'sh', run.scratch], { uid: owner.uid, gid: owner.gid, stdio: 'ignore' });
}

/**
 * A run that never settled, settled now as its exit would have: what the judge admits is applied,
 * the rest kept aside. Its deletions are its whiteouts (the overlay's view is gone).
 */
export function settleLate(home: string, run: ReviewedRun): { applied: number; kept: KeptChange[] } {
  const readable = readableScratch(run);
  try {
    const settled = settleOverlays(readable.folder, layersOf(run, readable.folder), run.record, false, () => undefined, readable.folder === run.scratch);
    if (settled.kept.length === 0) {
      removeAsOwner(run);
      forgetRun(home, run.scratch);
    } else recordKept(home, run.scratch, settled.kept);
    return settled;
  } finally {
    readable.done();
  }
}

/**
 * What `keyway contain review ID` shows of a settled run: its kept changes and their digest, which
 * is recorded in the home as the one --apply may put in place.
 */
export function showKept(home: string, run: ReviewedRun): { kept: KeptChange[]; digest: string } {
  const kept = run.kept ?? [];
  const readable = readableScratch(run);
  try {
    const digest = keptDigest(kept, layersOf(run, readable.folder));
    recordShown(home, run.scratch, digest);
    return { kept, digest };
  } finally {
    readable.done();
  }
}

export type AppliedKept =
  /** `left`: the changes whose name is not UTF-8, never put in place: they go with the run. */
  | { applied: number; failed: string[]; left: KeptChange[]; digest: string }
  /** The kept changes are not the ones review last showed (or it showed none): nothing was applied. */
  | { changedSinceShown: true; digest: string };

/**
 * Puts the kept changes of a settled run in place, exactly those `keyway contain review ID` showed
 * (their digest is the one it recorded; else nothing is applied); the run is gone after. A change
 * whose name is not UTF-8 is not put in place: the person saw it only escaped.
 */
export function applyKept(home: string, run: ReviewedRun): AppliedKept {
  const failed: string[] = [];
  const left: KeptChange[] = [];
  let applied = 0;
  const readable = readableScratch(run);
  let digest: string;
  try {
    const layers = layersOf(run, readable.folder);
    // As root, `readable` is this process's own copy: what is hashed is what is applied.
    digest = keptDigest(run.kept ?? [], layers);
    if (run.shown !== digest) return { changedSinceShown: true, digest };
    for (const change of run.kept ?? []) {
      const layer = layers.find((l) => l.root === change.root);
      if (change.raw !== undefined) left.push(change);
      // A FIFO, socket or device is never put in place: it goes with the run.
      if (layer === undefined || change.rel === '' || change.kind === 'other' || change.raw !== undefined) continue;
      try {
        applyChange(layer.upper, layer.root, change.rel, change.kind);
        applied++;
      } catch (err) {
        failed.push(
          `${join(change.root, change.rel)}: ${err instanceof ApplyRefused ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message)}`,
        );
      }
    }
  } finally {
    readable.done();
  }
  if (failed.length === 0) {
    removeAsOwner(run);
    forgetRun(home, run.scratch);
  }
  return { applied, failed, left, digest };
}

export function discard(home: string, run: ReviewedRun): void {
  removeAsOwner(run);
  forgetRun(home, run.scratch);
}
