import { isAbsolute, join, relative, sep } from 'node:path';

// What a contained command sees of the host's files and processes (keyway run --contain), built
// as bubblewrap's arguments. bwrap (Debian's `bubblewrap`, the tool Flatpak and Claude Code's
// sandbox-runtime use) makes the PID namespace, the fresh /proc and /dev, the read-only view of
// the host and the new session, walking every submount to make it read-only; we would otherwise
// write that mount code by hand. keyway keeps the network part (contain/inside.ts): bwrap runs
// inside the network namespace inside.ts has set up, and its own user namespace leaves the command
// no capability over the one keyway's rules live in.

/** The user's credential files, hidden from a contained command by default (relative to the home folder). */
export const CREDENTIAL_PATHS = [
  '.ssh',
  '.aws',
  '.gnupg',
  '.kube',
  '.docker/config.json',
  '.config/gh',
  '.config/gcloud',
  '.config/op',
  '.azure',
  '.netrc',
  '.git-credentials',
  '.npmrc',
  '.pypirc',
  '.vault-token',
  '.cargo/credentials.toml',
  '.password-store',
  '.local/share/keyrings',
] as const;

/** Private to the command (an empty tmpfs each): where Unix sockets and shared scratch files live. */
export const PRIVATE_DIRS = ['/tmp', '/var/tmp', '/run', '/var/run', '/dev/shm'] as const;

export interface SandboxPlan {
  /** The command's uid and gid, as the host sees them (never 0). */
  uid: number;
  gid: number;
  /** The folder `keyway run` was started in: the command's working directory, writable. */
  workdir: string;
  /** --allow-write: writable besides the working folder. */
  writable: string[];
  /** --allow-socket: host Unix sockets the command may reach (the socket filter is then off). */
  sockets: string[];
  /** keyway's own files, the credential files, contain.hide: an empty read-only folder or file in their place. */
  hide: string[];
  /** Private dirs besides PRIVATE_DIRS (the user's runtime directory). */
  privateDirs: string[];
  /**
   * Programs' folders under a private dir, seen read-only through it: the command's PATH entries
   * and its own folder (NixOS keeps PATH in /run/current-system; a checkout in /tmp has its node).
   */
  programs: string[];
  /** For the judge of what the command wrote (contain/change-judge.ts): the home folders, and PATH's absolute folders. */
  homes: string[];
  pathFolders: string[];
  /** PATH's entries that are not absolute (node_modules/.bin, `.`, an empty one). */
  relativePathEntries: string[];
  /** What git's configuration names inside the writable folders (contain/git-configured.ts). */
  gitConfigured: string[];
}

/** What is at a host path as the command's uid reaches it; undefined: nothing, or not reachable. */
export type PathKind = 'dir' | 'file' | undefined;

export function isWithin(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Why the plan would defeat containment, or undefined (contain_refused, exit 2). Admitted: a working
 * folder and --allow-write paths that are not `/`, hold none of keyway's own files (`keywayPaths`:
 * its home, config, audit log, file: secrets), are not inside a hidden path or a `.git` (git's
 * configuration would land unjudged), and, for a file, not in a folder on PATH.
 */
export function planProblem(plan: SandboxPlan, keywayPaths: readonly string[] = []): string | undefined {
  const fix = "run from your project's folder";
  const root = rootWorkdirProblem(plan.workdir);
  if (root !== undefined) return root;
  for (const hidden of plan.hide) {
    if (isWithin(plan.workdir, hidden))
      return `the working folder ${plan.workdir} is inside ${hidden}, which a contained command never sees: run from your project's folder`;
    for (const path of [...plan.writable, ...plan.sockets]) {
      if (isWithin(path, hidden)) return `${path} is inside ${hidden}, which a contained command never sees`;
    }
  }
  for (const path of [plan.workdir, ...plan.writable]) {
    const what = path === plan.workdir ? `the working folder ${path}` : `--allow-write ${path}`;
    if (path === '/') return `--allow-write /: the whole host would be the command's to write`;
    for (const own of keywayPaths) if (isWithin(own, path) && own !== path) return `${what} holds keyway's own ${own}; ${fix}`;
    if (path.split(sep).some((part) => part.toLowerCase() === '.git')) return `${what} is inside a .git folder, whose configuration git runs; ${fix}`;
  }
  for (const path of plan.writable) {
    const folder = [...plan.pathFolders, ...plan.homes.map((home) => join(home, 'bin'))].find((dir) => isWithin(path, dir));
    if (folder !== undefined) return `--allow-write ${path} is in ${folder}, a folder on PATH: a program written there runs by its name`;
  }
  return undefined;
}

/**
 * The one refusal known from the working folder alone, said before anything else is tried (a
 * machine without user namespaces would otherwise answer from / with unshare's bare EPERM).
 */
export function rootWorkdirProblem(workdir: string): string | undefined {
  if (workdir !== '/') return undefined;
  return "the working folder is /: the whole host would be the command's to write; run from your project's folder";
}

/**
 * bwrap's arguments, before `--` and the command. `kind` tells what is at a path (stat as the
 * command's uid, links followed), `isLink` whether the path itself is a link; `seccompFd` is the
 * descriptor carrying contain/seccomp.ts's filter, if any.
 */
export function bwrapArguments(
  plan: SandboxPlan,
  kind: (path: string) => PathKind,
  seccompFd: number,
  isLink: (path: string) => boolean = () => false,
): string[] {
  const args = [
    '--unshare-user',
    '--uid',
    String(plan.uid),
    '--gid',
    String(plan.gid),
    // Its own PID namespace: keyway and every host process are out of sight and out of reach of
    // kill(2) and ptrace(2). IPC (System V shared memory) and the cgroup view are its own too.
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-cgroup-try',
    // A new session: the terminal it was started from is not its controlling terminal, so TIOCSTI
    // cannot push keystrokes into the shell that started it.
    '--new-session',
    '--die-with-parent',
    // No user namespace inside (the seccomp filter refuses CLONE_NEWUSER too): each one would give
    // the command full capabilities over a namespace of its own, and the kernel's surface with them.
    '--disable-userns',
    '--cap-drop',
    'ALL',
    // The host, read-only (every submount too), then what is fresh or private on top.
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
  ];
  // A private dir that is a link (/var/run to /run) is private through its target.
  const privates = [...PRIVATE_DIRS, ...plan.privateDirs].filter((dir) => kind(dir) === 'dir' && !isLink(dir));
  for (const dir of privates) args.push('--tmpfs', dir);
  const bound: string[] = [];
  for (const path of [...new Set(plan.programs)]) {
    if (kind(path) === undefined || !privates.some((dir) => isWithin(path, dir) && path !== dir)) continue;
    args.push('--ro-bind', path, path);
    bound.push(path);
  }
  for (const path of [plan.workdir, ...plan.writable]) {
    args.push('--bind', path, path);
    bound.push(path);
  }
  for (const socket of plan.sockets) {
    args.push('--bind', socket, socket);
    bound.push(socket);
  }
  // Out of sight already when under a private dir and under nothing bound from the host.
  const visible = (path: string) => !privates.some((dir) => isWithin(path, dir)) || bound.some((b) => isWithin(path, b));
  // Shortest first: a path inside a folder already hidden is gone with it (and could not be mounted on).
  const hidden: string[] = [];
  for (const path of [...new Set(plan.hide)].sort((a, b) => a.length - b.length)) {
    const what = kind(path);
    if (what === undefined || !visible(path) || hidden.some((folder) => isWithin(path, folder))) continue;
    if (what === 'dir') {
      args.push('--tmpfs', path, '--remount-ro', path);
      hidden.push(path);
    } else args.push('--ro-bind', '/dev/null', path);
  }
  args.push('--chdir', plan.workdir);
  args.push('--seccomp', String(seccompFd));
  return args;
}

/** keyway's own cache under a home (cli/compile-cache.ts: compiled code keyway runs): hidden like keyway's home. */
export const KEYWAY_CACHE = '.cache/keyway';

/** The default hidden paths under each home folder. */
export function defaultHidden(homes: readonly string[]): string[] {
  return homes.flatMap((home) => [...CREDENTIAL_PATHS, KEYWAY_CACHE].map((p) => join(home, p)));
}
