import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { isWithin } from './sandbox.ts';

// `--allow-write ~/.claude` on a first run, before the agent ever made its folder: the recipe in
// docs/containment.md must work then too. What keyway makes (default deny), and nothing else:
// - a path that does not exist at all (not even as a link leading nowhere),
// - inside a home folder (the command's user's, or $HOME; never `/`), not the home itself,
// - whose parent exists and is a real folder (one level made, never a chain),
// - made only once every other check has passed (so a refused run makes nothing),
// - as its parent's owner (as root, by a child process running as that owner, so a parent swapped
//   for a link leads nowhere root could write), private to that owner (0700 folder, 0600 file),
// - a folder, or a file where the name has an extension (`.claude.json`) and does not end in `/`:
//   empty, or `{}` for a .json file (an empty object reads as "nothing set"; an empty file is not JSON).
// Anywhere else a missing path is refused, saying to make it.

export interface MissingWritable {
  path: string;
  kind: 'folder' | 'file';
  owner: { uid: number; gid: number };
}

/** Why an --allow-write path cannot be used; the message is the whole line after `--allow-write PATH: `. */
export class WritableRefused extends Error {}

/** Where --allow-write `given` is (resolved), and what keyway must make there first, if anything. */
export function writableTarget(given: string, homes: readonly string[]): { path: string; missing?: MissingWritable } {
  const absolute = resolve(given);
  try {
    return { path: realpathSync(absolute) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new WritableRefused((err as Error).message);
  }
  if (exists(absolute)) throw new WritableRefused('a link to something that does not exist: remove the link, or make what it points to');
  let parent: string;
  try {
    parent = realpathSync(dirname(absolute));
  } catch {
    throw new WritableRefused(`no such file or folder, nor its folder ${dirname(absolute)}: make it first`);
  }
  const path = join(parent, basename(absolute));
  // A home of `/` (some service accounts) would make the whole host "inside the home": not one.
  const home = homes.map((h) => realOrSelf(h)).find((h) => h !== '/' && isWithin(path, h) && path !== h);
  if (home === undefined) throw new WritableRefused(`no such file or folder (keyway makes a missing one only inside your home folder): make it first`);
  const { uid, gid } = statSync(parent);
  const kind = given.endsWith('/') || extname(path) === '' ? 'folder' : 'file';
  return { path, missing: { path, kind, owner: { uid, gid } } };
}

/** Makes each missing path as planned; returns the lines that say so. Throws on the first it cannot make. */
export function makeMissing(missing: readonly MissingWritable[]): string[] {
  const said: string[] = [];
  for (const m of missing) {
    const content = m.path.endsWith('.json') ? '{}\n' : '';
    if (process.getuid?.() === 0 && m.owner.uid !== 0) makeAs(m, content);
    else {
      try {
        if (m.kind === 'folder') mkdirSync(m.path, { mode: 0o700 });
        else writeFileSync(m.path, content, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        // Made meanwhile (EEXIST) or not ours to make: never written over.
        throw new WritableRefused(`could not make ${m.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    said.push(
      `made ${m.path} (${m.kind === 'folder' ? 'an empty folder' : content === '' ? 'an empty file' : 'a file holding {}'}) for --allow-write: it did not exist yet`,
    );
  }
  return said;
}

/** As root, for a parent another uid owns: made by a child process running as that uid. */
function makeAs(m: MissingWritable, content: string): void {
  const script = m.kind === 'folder' ? 'mkdir -m 700 -- "$1"' : 'umask 077; set -C; printf %s "$2" > "$1"';
  const r = spawnSync('sh', ['-c', script, 'sh', m.path, content], { uid: m.owner.uid, gid: m.owner.gid, encoding: 'utf8', cwd: '/' });
  if (r.status !== 0) throw new WritableRefused(`could not make ${m.path} as uid ${m.owner.uid}: ${(r.stderr || r.error?.message || 'failed').trim()}`);
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
