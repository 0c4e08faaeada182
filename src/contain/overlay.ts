import {
  readlinkSync,
  closeSync,
  constants,
  existsSync,
  chmodSync,
  fchmodSync,
  fstatSync,
  openSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { basename, join } from 'node:path';
import { ApplyRefused, applyChange, lstatOrUndefined } from './apply-change.ts';
import { type ChangeKind, isWithin, type JudgeContext, judgeChange } from './change-judge.ts';
import { shownName } from './shown-name.ts';

// The command's writes go to an overlay, and reach the host when it exits, judged one by one
// (contain/change-judge.ts): default deny over what would run later. Each writable folder (the
// working folder, each --allow-write folder) gets an overlayfs mounted over it in the containment's
// own mount namespace (unprivileged overlayfs, Linux 5.11+): the host's folder is its lower layer,
// read as it is; what the command writes goes to an upper folder of a scratch folder in /var/tmp,
// which the command never sees (its /var/tmp is private). When it exits, every entry of the upper
// folder is a change it made, and every name the host folder has and the overlay no longer shows is
// one it deleted; each is applied to the host folder (through a bind of it made before the overlay
// covered it) or kept aside in the scratch folder, listed in kept.json for `keyway contain review`.
// A run that never reached its end (keyway killed) leaves its scratch folder with run.json alone:
// nothing of it reached the host, and review lists it too.

export const SCRATCH_PREFIX = 'keyway-contain-';

export interface OverlayLayer {
  /** The host folder the command writes (the overlay is mounted over it). */
  root: string;
  /** What the command wrote. */
  upper: string;
  /** The host folder itself, bound here before the overlay covered it. */
  lower: string;
}

export interface KeptChange {
  root: string;
  /** Relative to root, '/'-separated; where `raw` is set, only the name as shown (contain/shown-name.ts). */
  rel: string;
  /** The relative path's bytes (base64), where they are not UTF-8: such a change is never put in place. */
  raw?: string;
  kind: ChangeKind;
  why: string;
}

/** Why a name that is not UTF-8 is kept aside: the judge reads names as text, and so does the person reviewing them. */
export const NOT_UTF8 = 'a name that is not UTF-8';

export interface RunRecord {
  v: 1;
  /** Wall-clock milliseconds when the command started: a host file changed after it, and by the command too, is a conflict. */
  startedMs: number;
  workdir: string;
  roots: string[];
  /** What the judge knew (contain/change-judge.ts), for a run settled later by review. */
  homes: string[];
  pathFolders: string[];
  relativePathEntries?: string[];
  gitConfigured?: string[];
  homeLinked?: Array<{ link: string; target: string }>;
  /** The process that settles the run when the command exits (a host pid). */
  pid: number;
  state: 'running' | 'done';
}

export interface KeptRecord {
  v: 1;
  kept: KeptChange[];
}

export interface OverlayResult {
  applied: number;
  kept: KeptChange[];
  /** Where the kept changes are (removed when none are). */
  scratch: string;
}

/** A run's name for `keyway contain review`: its scratch folder's, less the prefix. */
export function runId(scratch: string): string {
  return basename(scratch).slice(SCRATCH_PREFIX.length);
}

/** Characters mount(8) or overlayfs would read as separators in a folder's path. */
export const UNMOUNTABLE = /[,:\\"\n]/;

/** Mounts an overlay over each folder; `mount` runs mount(8) with these arguments (and fails the run if it fails). */
export function mountOverlays(
  roots: readonly string[],
  about: Pick<RunRecord, 'workdir' | 'homes' | 'pathFolders' | 'relativePathEntries' | 'gitConfigured' | 'homeLinked'>,
  mount: (args: string[]) => void,
  unmount: (path: string) => void,
): { scratch: string; layers: OverlayLayer[]; record: RunRecord } {
  const base = existsSync('/var/tmp') ? '/var/tmp' : '/tmp';
  const scratch = mkdtempSync(join(base, SCRATCH_PREFIX));
  const record: RunRecord = { v: 1, startedMs: Date.now(), ...about, roots: [...roots], pid: process.pid, state: 'running' };
  writeFileSync(join(scratch, 'run.json'), `${JSON.stringify(record)}\n`, { mode: 0o600 });
  try {
    const layers = roots.map((root, i) => {
      if (UNMOUNTABLE.test(root)) throw new Error(`${root}: a folder whose name has , : \\ or " cannot be an overlay's layer`);
      const layer = { root, upper: join(scratch, String(i), 'upper'), lower: join(scratch, String(i), 'lower') };
      const work = join(scratch, String(i), 'work');
      for (const dir of [layer.upper, layer.lower, work]) mkdirSync(dir, { recursive: true, mode: 0o700 });
      mount(['--bind', root, layer.lower]);
      // redirect_dir nofollow (no redirects made or followed): a folder renamed inside is copied, so a folder moved into place (to a
      // `.git`) is new in the upper layer, never the old one under a new name.
      mount(['-t', 'overlay', 'overlay', '-o', `lowerdir=${root},upperdir=${layer.upper},workdir=${work},userxattr,redirect_dir=nofollow`, root]);
      return layer;
    });
    return { scratch, layers, record };
  } catch (err) {
    for (const name of namesIn(scratch)) unmount(join(scratch, name, 'lower'));
    removeScratch(scratch);
    throw err;
  }
}

/**
 * Applies what the judge admits, keeps the rest; call once the command and all it started have
 * exited. `mergedView`: the overlays are still mounted over the roots (at the command's exit), so
 * deletions are what the host folder has and the overlay no longer shows; without it (a run settled
 * later by review), the whiteouts of the upper folder are the deletions.
 */
export function settleOverlays(
  scratch: string,
  layers: readonly OverlayLayer[],
  record: RunRecord,
  mergedView = true,
  /** Unmounts each layer's bind of the host folder, so that an empty scratch folder can go. */
  release: (layer: OverlayLayer) => void = () => undefined,
  /** false: `scratch` is a copy of the run's (a review as root), nothing is written or removed there. */
  ownFolder = true,
): OverlayResult {
  const { startedMs } = record;
  // The working folder too: the judge never takes it for an application's state (~/.dotfiles/project).
  const context = { homes: record.homes, pathFolders: record.pathFolders, workdir: record.workdir };
  let applied = 0;
  const kept: KeptChange[] = [];
  for (const layer of layers) {
    const gitFolders = new Map<string, boolean>();
    const judge: JudgeContext = {
      ...context,
      root: layer.root,
      wasFolder: (path) => isWithin(path, layer.root) && isFolder(join(layer.lower, path.slice(layer.root.length))),
      below: (path) => hostPathsBelow(layer, path),
      wasGitFolder: (path) => {
        if (!isWithin(path, layer.root)) return false;
        // Asked for every folder above every change: once per folder.
        let known = gitFolders.get(path);
        if (known === undefined) {
          const host = join(layer.lower, path.slice(layer.root.length));
          known = lstatOrUndefined(join(host, 'HEAD'))?.isFile() === true && isFolder(join(host, 'objects')) && isFolder(join(host, 'refs'));
          gitFolders.set(path, known);
        }
        return known;
      },
      relativePathEntries: record.relativePathEntries ?? [],
      gitConfigured: record.gitConfigured ?? [],
      homeLinked: record.homeLinked ?? [],
      // The command's view: the overlay while it is mounted; else what it wrote, over the host's.
      isThere: (path) =>
        isWithin(path, layer.root) &&
        (there(join(mergedView ? layer.root : layer.upper, path.slice(layer.root.length))) ||
          (!mergedView && there(join(layer.lower, path.slice(layer.root.length))))),
    };
    for (const change of changesOf(layer, mergedView)) {
      if (change.raw !== undefined) {
        kept.push({
          root: layer.root,
          rel: change.rel,
          raw: change.raw.toString('base64'),
          kind: change.kind,
          why: change.kind === 'dir' ? `${NOT_UTF8} (kept with all inside it)` : NOT_UTF8,
        });
        continue;
      }
      const path = change.rel === '' ? layer.root : join(layer.root, ...change.rel.split('/'));
      const target = change.kind === 'symlink' ? linkTarget(join(layer.upper, ...change.rel.split('/'))) : undefined;
      let verdict = judgeChange({ path, kind: change.kind, ...(target === undefined ? {} : { target }) }, judge);
      // A folder the host has already is in the upper layer as the parent of what changed in it:
      // its own mode is applied where the judge admits it, and nothing is kept of it otherwise.
      if (change.kind === 'dir' && !verdict.apply && isFolder(join(layer.lower, ...change.rel.split('/')))) continue;
      if (verdict.apply && change.kind !== 'dir' && changedOnHost(join(layer.lower, ...change.rel.split('/')), startedMs, change.kind === 'deleted'))
        verdict = { apply: false, why: 'changed on the host too while the command ran' };
      if (
        verdict.apply &&
        kept.some((k) => k.root === layer.root && k.raw === undefined && k.kind !== 'deleted' && isWithin(change.rel, k.rel) && k.rel !== '')
      )
        verdict = { apply: false, why: 'inside a folder kept aside' };
      if (verdict.apply) {
        try {
          if (change.rel !== '') applyChange(layer.upper, layer.lower, change.rel, change.kind);
          applied++;
          continue;
        } catch (err) {
          verdict = {
            apply: false,
            why: err instanceof ApplyRefused ? err.message : `could not apply: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          };
        }
      }
      kept.push({ root: layer.root, rel: change.rel, kind: change.kind, why: verdict.why });
    }
  }
  for (const layer of layers) release(layer);
  if (!ownFolder) {
    // Settled from a copy: the caller records what was kept, and removes or keeps the run's folder.
  } else if (kept.length === 0) removeScratch(scratch);
  else {
    writeFileSync(join(scratch, 'kept.json'), `${JSON.stringify({ v: 1, kept } satisfies KeptRecord)}\n`, { mode: 0o600 });
    writeFileSync(join(scratch, 'run.json'), `${JSON.stringify({ ...record, state: 'done' })}\n`, { mode: 0o600 });
  }
  return { applied, kept, scratch };
}

/** One change in a layer; `raw`: the relative path's bytes, where they are not UTF-8 (`rel` is then only its shown form). */
interface LayerChange {
  rel: string;
  raw?: Buffer;
  kind: ChangeKind;
}

/**
 * Every change in a layer, parents before what is inside them: what the upper folder holds, and the
 * deletions. Names are read as bytes: one that is not UTF-8 is a change of its own (kept aside), and
 * what is inside a folder so named is not walked.
 */
function changesOf(layer: OverlayLayer, mergedView: boolean): LayerChange[] {
  const changes: LayerChange[] = [];
  const walk = (rel: string) => {
    const dir = rel === '' ? layer.upper : join(layer.upper, ...rel.split('/'));
    const merged = rel === '' ? layer.root : join(layer.root, ...rel.split('/'));
    const lower = rel === '' ? layer.lower : join(layer.lower, ...rel.split('/'));
    // Deletions: what the host folder has here that the command's view no longer shows.
    const shown = new Set(byteNamesIn(merged).map((name) => name.toString('latin1')));
    for (const name of mergedView && isFolder(lower) ? byteNamesIn(lower) : []) {
      if (!shown.has(name.toString('latin1'))) changes.push({ ...childOf(rel, name), kind: 'deleted' });
    }
    for (const name of byteNamesIn(dir)) {
      const child = childOf(rel, name);
      const stat = lstatSync(pathIn(dir, name));
      // A whiteout (a 0/0 character device) marks a deletion, found above where the view is there.
      if (stat.isCharacterDevice() && stat.rdev === 0) {
        if (!mergedView) changes.push({ ...child, kind: 'deleted' });
        continue;
      }
      const kind: ChangeKind = stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : stat.isSymbolicLink() ? 'symlink' : 'other';
      changes.push({ ...child, kind });
      if (kind === 'dir' && child.raw === undefined) walk(child.rel);
    }
  };
  walk('');
  return changes;
}

function childOf(rel: string, name: Buffer): { rel: string; raw?: Buffer } {
  if (isUtf8(name)) return { rel: joinRel(rel, name.toString('utf8')) };
  const raw = Buffer.concat([Buffer.from(rel === '' ? '' : `${rel}/`), name]);
  return { rel: shownName(raw), raw };
}

function joinRel(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

/** A folder's own names (the scratch folder's). */
function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A folder's names as the bytes they are (a name the command made need not be UTF-8). */
function byteNamesIn(dir: string | Buffer): Buffer[] {
  try {
    return readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return [];
  }
}

function pathIn(dir: string | Buffer, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);
}

function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The host's paths below a folder of a layer (as paths under its root): a folder the command
 * deleted whole is judged by what it held. Undefined past 100,000: too large to look through.
 */
function hostPathsBelow(layer: OverlayLayer, path: string): string[] | undefined {
  if (!isWithin(path, layer.root)) return [];
  const found: string[] = [];
  const walk = (rel: string): boolean => {
    const host = join(layer.lower, rel);
    if (!isFolder(host)) return true;
    for (const name of namesIn(host)) {
      if (found.length >= 100_000) return false;
      const inner = join(rel, name);
      found.push(join(layer.root, inner));
      if (!walk(inner)) return false;
    }
    return true;
  };
  return walk(path.slice(layer.root.length)) ? found : undefined;
}

/**
 * Whether the host changed a path while the command ran; `deep`: anything inside it too (a folder
 * the command deleted while the person edited a file in it). A folder too large to look through
 * (past 100,000 entries) counts as changed: it is kept aside, not deleted.
 */
function changedOnHost(path: string, startedMs: number, deep = false): boolean {
  let budget = 100_000;
  const changed = (at: string | Buffer): boolean => {
    if (--budget < 0) return true;
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(at);
    } catch {
      return false;
    }
    if (stat.ctimeMs >= startedMs) return true;
    return deep && stat.isDirectory() && byteNamesIn(at).some((name) => changed(pathIn(at, name)));
  };
  return changed(path);
}

/**
 * The scratch folder, gone. Never removed recursively as a whole: each layer's `lower` is a bind of
 * the host folder while the namespace lives, so it is only ever rmdir'd (which fails on a mount).
 */
export function removeScratch(scratch: string): void {
  for (const name of namesIn(scratch)) {
    const layer = join(scratch, name);
    if (!isFolder(layer)) {
      rmSync(layer, { force: true });
      continue;
    }
    // overlayfs leaves its work folder's own folder with no permission at all, and the command may
    // have left folders it cannot write (chmod 500, or a read-only folder of the host's copied up):
    // opened up for their owner first, or no one but root could empty them.
    for (const part of ['upper', 'work']) {
      openUp(Buffer.from(join(layer, part)));
      rmSync(join(layer, part), { recursive: true, force: true });
    }
    for (const dir of [join(layer, 'lower'), layer]) {
      try {
        rmdirSync(dir);
      } catch {
        // Still a mount point, or not empty: left as it is.
      }
    }
  }
  try {
    rmdirSync(scratch);
  } catch {
    // Left as it is (see above).
  }
}

/** A folder and every folder in it made readable, writable and searchable by their owner; links are not followed. */
function openUp(folder: Buffer): void {
  let fd: number;
  try {
    // Through a descriptor opened without following a link: never another file's mode.
    fd = openSync(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    // EACCES: a folder with no permission for its owner (never so for root), which cannot be opened:
    // opened up by path, once it is seen not to be a link (only its owner, this process's uid, could swap it for one).
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') return;
    try {
      if (!lstatSync(folder).isDirectory()) return;
      chmodSync(folder, 0o700);
      fd = openSync(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch {
      return;
    }
  }
  try {
    const mode = fstatSync(fd).mode;
    if ((mode & 0o700) !== 0o700) fchmodSync(fd, (mode & 0o7777) | 0o700);
  } catch {
    // Not ours to change: rmSync says what fails.
  } finally {
    closeSync(fd);
  }
  for (const name of byteNamesIn(folder)) openUp(pathIn(folder, name));
}

function there(path: string): boolean {
  return lstatOrUndefined(path) !== undefined;
}

function isFolder(path: string): boolean {
  return lstatOrUndefined(path)?.isDirectory() === true;
}
