import { join, sep } from 'node:path';
import { isWithin } from './change-judge.ts';

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
  /**
   * Folders shown empty and read-only (contain/home-view.ts): every home folder and the folders near
   * the top a person's uid owns. What the run names inside them is bound back over the empty folder.
   */
  absent: string[];
  /** The command's HOME: an empty folder of its own inside, dropped when it exits (undefined: HOME is not absent, or not set). */
  throwawayHome: string | undefined;
  /** Shown read-only inside an absent folder: program folders, --allow-read paths, the admitted configuration. */
  readable: string[];
  /** A profile's state under --contain: a folder keyway keeps (`source`), shown writable where the agent looks (`target`). */
  state: Array<{ source: string; target: string }>;
  /** Unix sockets the kernel lists that --allow-socket did not name: a null device in their place. */
  hiddenSockets: string[];
  /** For the judge of what the command wrote (contain/change-judge.ts): the home folders, and PATH's absolute folders. */
  homes: string[];
  pathFolders: string[];
  /** PATH's entries that are not absolute (node_modules/.bin, `.`, an empty one). */
  relativePathEntries: string[];
  /** What git's configuration names inside the writable folders (contain/git-configured.ts). */
  gitConfigured: string[];
  /** Links of the home's hidden names (and ~/bin) that lead into the writable folders: what the command writes there is kept aside. */
  homeLinked: Array<{ link: string; target: string }>;
}

/** What is at a host path as the command's uid reaches it; undefined: nothing, or not reachable. */
export type PathKind = 'dir' | 'file' | undefined;

/** One test of "inside" for every part of containment: change-judge's (`..foo` is a name inside its folder). */
export { isWithin };

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

/** The scratch places a working folder may be in besides a home folder (documented in docs/containment.md). */
export const SCRATCH_PLACES = ['/tmp', '/var/tmp'] as const;

/**
 * Why a folder the command would write is not plainly a person's project, or undefined. Admitted:
 * a folder inside a home folder (not the home itself), or inside a scratch place (/tmp, /var/tmp;
 * not the place itself). Anything else (/etc, /srv, /opt/x, a mount) only with
 * --outside-home, which says what it gives: without it, as root, the command would read and write
 * that folder as its owner does (contain/idmapped-folders.ts).
 */
export function folderPlaceProblem(path: string, what: string, homes: readonly string[], scratch: readonly string[], anywhere = false): string | undefined {
  const home = homes.find((h) => h === path);
  if (home !== undefined) return `${what} is your home folder itself, which a contained command never sees whole: run from your project's folder inside it`;
  if (anywhere) return undefined;
  if (homes.some((h) => h !== '/' && isWithin(path, h))) return undefined;
  if (scratch.some((place) => place !== '/' && isWithin(path, place) && path !== place)) return undefined;
  return `${what} is neither in a home folder nor in ${scratch.join(', ')}: run from a project folder in your home, or add --outside-home to let the command write it (as root: as its owner)`;
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
  /** The empty folder inside.ts made for the command's HOME (a tmpfs it lists when the command exits). */
  homeSource?: string,
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
  // The homes and the person's folders: empty, then what the run names is bound back into them.
  // HOME's own folder is the throwaway one (bound below), not an empty read-only one.
  const absent = plan.absent.filter((dir) => kind(dir) === 'dir' && !isLink(dir) && !privates.some((p) => isWithin(dir, p)) && dir !== plan.throwawayHome);
  for (const dir of absent) args.push('--tmpfs', dir);
  const covered = [...privates, ...absent];
  const bound: string[] = [];
  if (homeSource !== undefined && plan.throwawayHome !== undefined) {
    args.push('--bind', homeSource, plan.throwawayHome);
    // Not the host's: nothing of the host is there to hide, so it is not in `bound`.
    covered.push(plan.throwawayHome);
  }
  const readable = new Set(plan.readable);
  // A PATH folder that is a home or an absent folder itself (PATH=~:…) is not a program's folder: left empty.
  const whole = new Set([...plan.homes, ...plan.absent]);
  for (const path of [...new Set([...plan.programs, ...plan.readable])]) {
    if (whole.has(path) && !readable.has(path)) continue;
    // A path named to read may be a home itself (--allow-read ~): bound read-only over its emptiness.
    if (kind(path) === undefined || !covered.some((dir) => isWithin(path, dir) && (path !== dir || readable.has(path)))) continue;
    args.push('--ro-bind', path, path);
    bound.push(path);
  }
  for (const path of [plan.workdir, ...plan.writable]) {
    args.push('--bind', path, path);
    bound.push(path);
  }
  for (const { source, target } of plan.state) {
    args.push('--bind', source, target);
    bound.push(target);
  }
  for (const socket of plan.sockets) {
    args.push('--bind', socket, socket);
    bound.push(socket);
  }
  // Out of sight already when under a private or absent dir and under nothing bound from the host.
  const visible = (path: string) => !covered.some((dir) => isWithin(path, dir)) || bound.some((b) => isWithin(path, b));
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
  // A socket nobody named: a null device in its place, which a connect(2) is refused at.
  const named = new Set(plan.sockets);
  for (const socket of [...new Set(plan.hiddenSockets)]) {
    // One the command's uid cannot reach is out of its reach already (and bwrap could not mount on it).
    if (named.has(socket) || kind(socket) === undefined || !visible(socket) || hidden.some((folder) => isWithin(socket, folder)) || isLink(socket)) continue;
    args.push('--ro-bind-try', '/dev/null', socket);
  }
  // Read-only once everything named is bound into them: a write there fails, never lands anywhere.
  for (const dir of absent) args.push('--remount-ro', dir);
  args.push('--chdir', plan.workdir);
  args.push('--seccomp', String(seccompFd));
  return args;
}

/** keyway's own cache under a home (cli/compile-cache.ts: compiled code keyway runs): hidden like keyway's home. */
export const KEYWAY_CACHE = '.cache/keyway';

/**
 * The default hidden paths under each home folder: behind the home's own absence (contain/home-view.ts),
 * still hidden where a run names a folder that holds them (--allow-read ~/.config).
 */
export function defaultHidden(homes: readonly string[]): string[] {
  return homes.flatMap((home) => [...CREDENTIAL_PATHS, KEYWAY_CACHE].map((p) => join(home, p)));
}
