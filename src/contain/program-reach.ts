import { closeSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ownChildFile } from '../process/own-program.ts';
import type { CommandUser } from './command-user.ts';

// Whether the contained command's uid can run its program at all. As root, keyway runs the command
// as another uid (contain/command-user.ts): a program installed under /root (0700), or a script
// whose interpreter is, is found on PATH by keyway and then fails inside as `bwrap: execvp claude:
// Permission denied`, after keyway, its namespaces and the agent's state were set up. Checked
// before: the program found on PATH as execvp finds it (each PATH folder that holds the name in
// turn, one the uid cannot run passed over), each link followed as the kernel does, and at every folder on the way the search permission that
// uid and gid have by the mode bits and ownership (never root's bypass: the command is not root),
// then read and execute on a script and execute on a binary; for a `#!` script, its interpreter
// the same way (`#!/usr/bin/env node`: env, then node on PATH). ACLs are not read.

/** Who the command runs as: uid, gid, and the supplementary groups it keeps (none as root: setpriv --clear-groups). */
export interface Reacher {
  uid: number;
  gid: number;
  groups: readonly number[];
  /**
   * Folders keyway idmaps to the uid when it runs as root (contain/idmapped-folders.ts): below them
   * what root owns is the uid's, what group 0 owns its gid's.
   */
  idmapped: readonly string[];
}

/** Where a program is: its path on PATH (or as named) and its real path. */
export interface Resolved {
  path: string;
  real: string;
}

export type Reach =
  | { kind: 'reachable'; program: Resolved }
  /** Not on PATH at all: execvp's own error says so; no reach to judge. */
  | { kind: 'not-found' }
  /** `blocked`: the folder it cannot search, or the file it cannot read or run, and its mode. */
  | { kind: 'unreachable'; program: Resolved; interpreter?: Resolved; blocked: { path: string; mode: number; what: 'folder' | 'file' } };

const SEARCH = 1;
const READ = 4;
const EXECUTE = 1;
const MAX_LINKS = 40;
/** How deep interpreters are followed (a script run by env run by a script…). */
const MAX_INTERPRETERS = 4;

/** Whether `who` has `bits` (r=4, w=2, x=1) on what `stat` describes at `path`, by owner, group, other. */
export function permits(stat: Stats, path: string, bits: number, who: Reacher): boolean {
  let { uid, gid } = stat;
  if (who.idmapped.some((folder) => path === folder || path.startsWith(folder.endsWith('/') ? folder : `${folder}/`))) {
    if (uid === 0) uid = who.uid;
    if (gid === 0) gid = who.gid;
  }
  const mode = stat.mode;
  const granted = uid === who.uid ? (mode >> 6) & 7 : gid === who.gid || who.groups.includes(gid) ? (mode >> 3) & 7 : mode & 7;
  return (granted & bits) === bits;
}

type Walk = { kind: 'real'; real: string } | { kind: 'missing' } | { kind: 'blocked'; path: string; mode: number };

/** `path` (absolute) resolved one name at a time as the kernel does, each folder looked in needing search permission for `who`. */
function walk(path: string, who: Reacher): Walk {
  const rest = path.split('/').filter((p) => p !== '' && p !== '.');
  let at = '/';
  let links = 0;
  while (rest.length > 0) {
    const name = rest.shift()!;
    const folder = statSync(at);
    if (!permits(folder, at, SEARCH, who)) return { kind: 'blocked', path: at, mode: folder.mode & 0o7777 };
    if (name === '..') {
      at = dirname(at);
      continue;
    }
    const next = join(at, name);
    let entry: Stats;
    try {
      entry = lstatSync(next);
    } catch {
      return { kind: 'missing' };
    }
    if (!entry.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++links > MAX_LINKS) return { kind: 'missing' };
    const target = readlinkSync(next);
    rest.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
    if (isAbsolute(target)) at = '/';
  }
  return { kind: 'real', real: at };
}

/** Every file `name` is on PATH, in PATH's order, or `name` itself when it has a `/`; relative ones from `cwd`. */
export function pathCandidates(name: string, path: string | undefined, cwd: string): string[] {
  const candidates = name.includes('/') ? [name] : (path ?? '').split(':').map((dir) => join(dir === '' ? '.' : dir, name));
  return candidates
    .map((candidate) => resolve(cwd, candidate))
    .filter((full) => {
      try {
        return statSync(full).isFile();
      } catch {
        return false;
      }
    });
}

/** Where a path leads, as keyway (root) sees it: named in the refusal even where the uid is stopped on the way. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The interpreter a `#!` line names, and the program `env` is asked to find (`#!/usr/bin/env node`, `-S node --flag`). */
function interpreterOf(real: string): { interpreter: string; viaEnv?: string } | undefined {
  const head = Buffer.alloc(256);
  let length = 0;
  try {
    const fd = openSync(real, 'r');
    try {
      length = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined; // not readable even to keyway: execve says why
  }
  const text = head.subarray(0, length).toString('latin1');
  if (!text.startsWith('#!')) return undefined;
  const words = text.slice(2).split('\n')[0]!.trim().split(/\s+/).filter(Boolean);
  const interpreter = words[0];
  if (interpreter === undefined) return undefined;
  if (basename(interpreter) !== 'env') return { interpreter };
  // env's options (-S splits the rest) and NAME=value assignments come before the program.
  const program = words.slice(1).find((w) => !w.startsWith('-') && !w.includes('='));
  return program === undefined ? { interpreter } : { interpreter, viaEnv: program };
}

type Blocked = { path: string; mode: number; what: 'folder' | 'file' };
type Judged = { ok: true } | { ok: false; at: string; blocked: Blocked };

interface Search {
  path: string | undefined;
  cwd: string;
  who: Reacher;
}

/**
 * Whether `who` can run `name` as execvp finds it on `path` (from `cwd`): it tries each PATH folder
 * holding the name in turn, and one the uid cannot run (EACCES) sends it on to the next; only when
 * none runs does the command fail. Judged as the program that runs, or the first one found when none does.
 */
export function programReach(name: string, path: string | undefined, cwd: string, who: Reacher): Reach {
  const found = judgeName(name, { path, cwd, who }, 0);
  if (found === undefined) return { kind: 'not-found' };
  const program: Resolved = { path: found.file, real: realPath(found.file) };
  if (found.judged.ok) return { kind: 'reachable', program };
  const { at, blocked } = found.judged;
  const interpreter = at === found.file ? undefined : { path: at, real: realPath(at) };
  return { kind: 'unreachable', program, ...(interpreter === undefined ? {} : { interpreter }), blocked };
}

/** The first of `name`'s PATH hits the uid can run, else the first hit and why not; undefined: none at all. */
function judgeName(name: string, search: Search, depth: number): { file: string; judged: Judged } | undefined {
  let first: { file: string; judged: Judged } | undefined;
  for (const file of pathCandidates(name, search.path, search.cwd)) {
    const judged = judgeFile(file, search, depth);
    if (judged.ok) return { file, judged };
    first ??= { file, judged };
  }
  return first;
}

/** Whether the uid can run `file`: the folders on its way, its mode, and a script's interpreter (and env's program). */
function judgeFile(file: string, search: Search, depth: number): Judged {
  const walked = walk(file, search.who);
  if (walked.kind === 'missing') return { ok: true }; // execve's own error, not one of reach
  if (walked.kind === 'blocked') return { ok: false, at: file, blocked: { path: walked.path, mode: walked.mode, what: 'folder' } };
  const stat = statSync(walked.real);
  if (!stat.isFile()) return { ok: true };
  const script = interpreterOf(walked.real);
  if (!permits(stat, walked.real, script === undefined ? EXECUTE : READ | EXECUTE, search.who))
    return { ok: false, at: file, blocked: { path: walked.real, mode: stat.mode & 0o7777, what: 'file' } };
  if (script === undefined || depth >= MAX_INTERPRETERS) return { ok: true };
  const interpreter = judgeFile(script.interpreter, search, depth + 1);
  if (!interpreter.ok || script.viaEnv === undefined) return interpreter;
  // env runs its program as execvp does: the first on PATH the uid can run.
  return judgeName(script.viaEnv, search, depth + 1)?.judged ?? { ok: true };
}

/** What the program resolves to, and what the uid cannot reach and why. */
export function unreachableReason(name: string, reach: Extract<Reach, { kind: 'unreachable' }>, uid: number): string {
  const { program, interpreter, blocked } = reach;
  const what = interpreter === undefined ? 'which' : `whose interpreter ${interpreter.real}`;
  const verb = blocked.what === 'folder' ? 'reach' : 'run';
  return `${name} resolves to ${program.real}, ${what} uid ${uid} cannot ${verb} (${blocked.path} is ${blocked.mode.toString(8).padStart(4, '0')})`;
}

/** The fix: as root, a place every user reads, or keyway run as the program's owner. */
export function unreachableFix(uid: number, asRoot: boolean): string {
  return asRoot
    ? 'install it where every user can read it (npm install -g), or run keyway as the user who owns it'
    : `make it readable and runnable by uid ${uid}, or install it where it is`;
}

/** One line: the reason and the fix. */
export function unreachableLine(name: string, reach: Extract<Reach, { kind: 'unreachable' }>, uid: number, asRoot: boolean): string {
  return `${unreachableReason(name, reach, uid)}: ${unreachableFix(uid, asRoot)}`;
}

/** The folders a contained command will reach its files through (contain/sandbox.ts's plan). */
export interface ContainedFolders {
  workdir: string;
  writable: readonly string[];
  sockets: readonly string[];
}

/**
 * Who the contained command is, for the reach check: as root, no supplementary groups, and the
 * folders run.ts idmaps to its uid (the written folders root owns, and the root-owned folders above
 * them, keyway's node and its own files that it cannot pass through).
 */
export async function containedReacher(user: CommandUser, folders: ContainedFolders): Promise<Reacher> {
  if (process.getuid?.() !== 0) return { uid: user.uid, gid: user.gid, groups: process.getgroups?.() ?? [], idmapped: [] };
  const { closedAncestors } = await import('./run.ts');
  const inside = ownChildFile(new URL(`./inside${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const written = [folders.workdir, ...folders.writable].filter((folder) => ownedByRoot(folder));
  const existing = [folders.workdir, ...folders.writable, ...folders.sockets, process.execPath, inside].filter((p) => ownedByRoot(dirname(p)) !== undefined);
  return { uid: user.uid, gid: user.gid, groups: [], idmapped: [...written, ...closedAncestors(existing, user)] };
}

/** Whether root owns `path`: undefined when there is nothing there. */
function ownedByRoot(path: string): boolean | undefined {
  try {
    return statSync(path).uid === 0;
  } catch {
    return undefined;
  }
}

/** `keyway run --contain`'s refusal when the command's uid cannot run its program; undefined when it can (or it is not on PATH). */
export async function unreachableProgram(
  command: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  user: CommandUser,
  folders: ContainedFolders,
): Promise<string | undefined> {
  const name = command[0];
  if (name === undefined) return undefined;
  const reach = programReach(name, env['PATH'], folders.workdir, await containedReacher(user, folders));
  return reach.kind === 'unreachable' ? unreachableLine(name, reach, user.uid, process.getuid?.() === 0) : undefined;
}
