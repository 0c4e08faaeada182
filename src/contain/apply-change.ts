import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join, sep } from 'node:path';
import type { ChangeKind } from './change-judge.ts';

// One change of a contained command put in place on the host: from the overlay's upper folder
// (what the command wrote) to the real folder. Used when the command exits (contain/overlay.ts),
// and by `keyway contain review --apply` for what was kept aside. The upper folder belongs to the
// command's uid, which (run as root, that is nobody) any other process of that uid can change
// under a review: so it is read without following a link, and a change whose kind is not what is
// there now is refused. Nothing here follows a link on the host side either: a folder on the way
// that is a link is refused, a link or file in the way is replaced, never written through. What
// lands has no set-id bit and is writable by its owner alone (group and others may read).

export class ApplyRefused extends Error {}

/** The permission bits a file or folder lands with: its own, less set-id and group or other write. */
const LANDING_MODE = 0o755;

/**
 * Puts `rel` (relative, '/'-separated) from `upper` into `target`. `kind` is what the change is;
 * a file is copied, a link made as a link, a folder made (an existing one is left as it is: a
 * mode the command gave a folder of the host's is not applied).
 */
export function applyChange(upper: string, target: string, rel: string, kind: ChangeKind): void {
  const to = join(target, ...rel.split('/'));
  checkFolders(target, rel);
  if (kind === 'deleted') {
    rmSync(to, { recursive: true, force: true });
    return;
  }
  const from = join(upper, ...rel.split('/'));
  if (kind === 'dir') {
    const source = lstatSync(from);
    if (!source.isDirectory()) throw new ApplyRefused(`${rel}: no longer a folder where the command wrote it`);
    const there = lstatOrUndefined(to);
    if (there?.isDirectory()) return;
    if (there !== undefined) rmSync(to, { recursive: true, force: true });
    mkdirSync(to, { mode: source.mode & LANDING_MODE });
    return;
  }
  const temporary = join(dirname(to), `.keyway-apply-${process.pid}-${Math.random().toString(36).slice(2)}`);
  if (kind === 'symlink') {
    if (!lstatSync(from).isSymbolicLink()) throw new ApplyRefused(`${rel}: no longer a link where the command wrote it`);
    symlinkSync(readlinkSync(from), temporary);
  } else if (kind === 'file') copyRegularFile(from, temporary, rel);
  else throw new ApplyRefused(`${rel}: not a file, folder or link`);
  try {
    const there = lstatOrUndefined(to);
    if (there?.isDirectory()) rmSync(to, { recursive: true, force: true });
    renameSync(temporary, to);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}

/** A regular file's bytes, read through a descriptor opened without following a link, into a new file. */
function copyRegularFile(from: string, to: string, rel: string): void {
  const source = openSync(from, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(source);
    if (!stat.isFile()) throw new ApplyRefused(`${rel}: no longer a file where the command wrote it`);
    const copy = openSync(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const buffer = Buffer.allocUnsafe(1024 * 1024);
      for (let read = readSync(source, buffer); read > 0; read = readSync(source, buffer)) {
        for (let written = 0; written < read; ) written += writeSync(copy, buffer, written, read - written);
      }
      fchmodSync(copy, stat.mode & LANDING_MODE);
      futimesSync(copy, stat.atime, stat.mtime);
    } finally {
      closeSync(copy);
    }
  } catch (err) {
    rmSync(to, { force: true });
    throw err;
  } finally {
    closeSync(source);
  }
}

/** Every folder between the target and the change is a folder, not a link (they are applied first). */
function checkFolders(target: string, rel: string): void {
  const parts = rel.split('/');
  let at = target;
  for (const part of parts.slice(0, -1)) {
    at = `${at}${sep}${part}`;
    const there = lstatOrUndefined(at);
    if (there === undefined || !there.isDirectory() || there.isSymbolicLink()) throw new ApplyRefused(`${rel}: ${at} is not a folder on the host`);
  }
}

/** What is at a path itself (a link is not followed), or undefined where nothing is. */
export function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
