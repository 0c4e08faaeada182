import { chmodSync, copyFileSync, constants, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import type { ChangeKind } from './change-judge.ts';

// One change of a contained command put in place on the host: from the overlay's upper folder
// (what the command wrote) to the real folder. Used when the command exits (contain/overlay.ts),
// and by `keyway contain review --apply` for what was kept aside. Nothing here follows a link on
// the host side: a folder on the way that is a link is refused, a link or file in the way is
// replaced, never written through. Modes keep their permission bits only (never set-id).

export class ApplyRefused extends Error {}

/**
 * Puts `rel` (relative, '/'-separated) from `upper` into `target`. `kind` is what the change is;
 * `upper` is read with lstat, so a file there is copied, a link made as a link.
 */
export function applyChange(upper: string, target: string, rel: string, kind: ChangeKind): void {
  const to = join(target, ...rel.split('/'));
  checkFolders(target, rel);
  if (kind === 'deleted') {
    rmSync(to, { recursive: true, force: true });
    return;
  }
  const from = join(upper, ...rel.split('/'));
  const source = lstatSync(from);
  if (kind === 'dir') {
    const there = statOrUndefined(to);
    if (there !== undefined && !there.isDirectory()) rmSync(to, { recursive: true, force: true });
    if (there === undefined || !there.isDirectory()) mkdirSync(to);
    chmodSync(to, source.mode & 0o1777);
    return;
  }
  const temporary = join(dirname(to), `.keyway-apply-${process.pid}-${Math.random().toString(36).slice(2)}`);
  if (kind === 'symlink') symlinkSync(readlinkSync(from), temporary);
  else if (kind === 'file') {
    copyFileSync(from, temporary, constants.COPYFILE_EXCL);
    chmodSync(temporary, source.mode & 0o777);
    utimesSync(temporary, source.atime, source.mtime);
  } else throw new ApplyRefused(`${rel}: not a file, folder or link`);
  try {
    const there = statOrUndefined(to);
    if (there?.isDirectory()) rmSync(to, { recursive: true, force: true });
    renameSync(temporary, to);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}

/** Every folder between the target and the change is a folder, not a link (they are applied first). */
function checkFolders(target: string, rel: string): void {
  const parts = rel.split('/');
  let at = target;
  for (const part of parts.slice(0, -1)) {
    at = `${at}${sep}${part}`;
    const there = statOrUndefined(at);
    if (there === undefined || !there.isDirectory() || there.isSymbolicLink()) throw new ApplyRefused(`${rel}: ${at} is not a folder on the host`);
  }
}

function statOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
