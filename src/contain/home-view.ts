import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { lstatOrUndefined } from './apply-change.ts';
import { isWithin } from './change-judge.ts';

// What a contained command sees of the homes on this machine: default deny. The host is shown
// read-only, but every home folder, and every folder near the top of the tree a person's uid owns,
// is absent (an empty folder in its place); inside them the command sees only what the run names
// (contain/sandbox.ts binds those back): the working folder, PATH's program folders, the profile's
// state, --allow-read and --allow-write paths, and the read-only configuration in
// ADMITTED_CONFIG_FILES when it runs nothing. No list of credential files decides what is hidden:
// a file nobody named is not there. keyway's homes are absent whatever is named (keywayHomes).

/** Where the home folders are: root's, every user's from the password database (uid >= UID_MIN), /home. */
export function homeFolders(given: readonly string[]): string[] {
  const found = new Set<string>();
  for (const home of given) if (isAbsolute(home)) found.add(home);
  for (const folder of ['/home', '/root']) if (isFolder(folder)) found.add(folder);
  const minimum = uidMinimum();
  for (const entry of passwdEntries()) {
    if ((entry.uid === 0 || entry.uid >= minimum) && entry.uid !== 65_534) found.add(entry.home);
  }
  return outermost([...found].filter((home) => home !== '/' && isAbsolute(home) && isFolder(home)));
}

/**
 * Folders a person's uid owns in the first two levels of the tree (`/srv/me`, `/opt/tool`, `/data`),
 * outside the home folders and the folders that are private or virtual inside anyway. Only for
 * uids other than root's: root owns the system's folders, which the command (never root) reads as
 * any user does.
 */
export function ownedFolders(uids: readonly number[]): string[] {
  const owners = new Set(uids.filter((uid) => uid !== 0));
  if (owners.size === 0) return [];
  const skipped = new Set(['/proc', '/sys', '/dev', '/run', '/tmp', '/var/tmp', '/home', '/root', '/mnt', '/media']);
  const found: string[] = [];
  const look = (folder: string, depth: number) => {
    for (const name of namesIn(folder)) {
      const path = join(folder, name);
      if (skipped.has(path)) continue;
      const stat = lstatOrUndefined(path);
      if (stat === undefined || !stat.isDirectory()) continue;
      if (owners.has(stat.uid)) found.push(path);
      else if (depth < 2) look(path, depth + 1);
    }
  };
  look('/', 1);
  // Removable and mounted drives: the person's, whoever owns their mount point.
  for (const folder of ['/mnt', '/media']) for (const name of namesIn(folder)) if (isFolder(join(folder, name))) found.push(join(folder, name));
  return found;
}

/**
 * Every keyway home keyway can know of: `~/.keyway` in every home folder, the service's
 * (/var/lib/keyway, and the one /etc/keyway/service.json names), and the homes of running keyways:
 * each door socket the kernel lists (`HOME/data/running/PID.sock`) and each process that says its
 * home in its environment (KEYWAY_HOME) or arguments (`--home`) where this process may read them.
 */
export function keywayHomes(homes: readonly string[], sockets: readonly string[]): string[] {
  const found = new Set<string>(['/var/lib/keyway']);
  for (const home of homes) found.add(join(home, '.keyway'));
  for (const home of homeFoldersInside(homes)) found.add(join(home, '.keyway'));
  try {
    const record = JSON.parse(readFileSync('/etc/keyway/service.json', 'utf8')) as { home?: unknown };
    if (typeof record.home === 'string' && isAbsolute(record.home)) found.add(record.home);
  } catch {
    // No service here.
  }
  for (const socket of sockets) {
    const door = /^(\/.+)\/data\/running\/[0-9]+\.sock$/.exec(socket);
    if (door !== null) found.add(door[1]!);
  }
  for (const home of homesOfProcesses()) found.add(home);
  return [...found];
}

/** The Unix sockets the kernel lists as bound to a path, in every network namespace this process can read. */
export function boundSockets(): string[] {
  const found = new Set<string>();
  const seen = new Set<string>();
  const read = (file: string) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return;
    }
    for (const path of socketPaths(text)) if (path.startsWith('/')) found.add(path);
  };
  read('/proc/net/unix');
  for (const pid of namesIn('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    let namespace: string;
    try {
      namespace = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue;
    }
    if (seen.has(namespace)) continue;
    seen.add(namespace);
    read(`/proc/${pid}/net/unix`);
  }
  return [...found];
}

/**
 * The paths of /proc/net/unix's entries, as the kernel writes them: `Num: RefCount Protocol Flags
 * Type St Inode Path`, one space before the path, which is written raw (spaces, tabs and newlines
 * in it included: a line that does not start an entry continues the path before it). An abstract
 * name starts with `@`; a socket bound to a relative name is listed as it was named, its folder
 * unknown (left out: docs/containment.md says so).
 */
export function socketPaths(text: string): string[] {
  const entry = /^[0-9a-f]+: [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{4} [0-9A-F]{2} +[0-9]+(?: (.*))?$/;
  const paths: Array<string | undefined> = [];
  for (const line of text.split('\n').slice(1)) {
    const match = entry.exec(line);
    if (match !== null) paths.push(match[1]);
    else if (paths.length > 0 && paths.at(-1) !== undefined) paths[paths.length - 1] += `\n${line}`;
  }
  // The file ends with a newline: a path that ended with one kept an empty last line too.
  return paths.filter((path): path is string => path !== undefined).map((path) => path.replace(/\n$/, ''));
}

/**
 * The read-only configuration a contained command may see in a home: git's, which `git commit`
 * needs for the author's name, shown only where every key it sets is one that names no command, no
 * credential helper, no file to include and no secret (GIT_INERT_KEYS). Anything else in it: the
 * file is not shown, and `why` says which key kept it out.
 */
export const ADMITTED_CONFIG_FILES = ['.gitconfig', '.config/git/config'] as const;

/** git settings that run nothing and name no secret: the author, line endings, colours, merge and push defaults. */
const GIT_INERT_KEYS: readonly RegExp[] = [
  /^user\.(name|email)$/,
  /^init\.defaultbranch$/,
  /^core\.(autocrlf|eol|safecrlf|quotepath|ignorecase|filemode|whitespace|precomposeunicode|editor)$/,
  /^color\.[a-z.-]+$/,
  /^(pull\.(rebase|ff)|push\.(default|autosetupremote|followtags)|fetch\.(prune|prunetags))$/,
  /^(merge\.(conflictstyle|ff)|rebase\.(autosquash|autostash|updaterefs)|rerere\.enabled)$/,
  /^diff\.(algorithm|colormoved|renames|mnemonicprefix)$/,
  /^(branch\.sort|tag\.sort|column\.ui|help\.autocorrect|log\.(date|decorate)|commit\.verbose)$/,
  /^status\.(short|branch|showuntrackedfiles)$/,
  /^advice\.[a-z]+$/,
];

export interface ConfigVerdict {
  path: string;
  shown: boolean;
  /** Why it is not shown. */
  why?: string;
}

/** Each of ADMITTED_CONFIG_FILES in `home` that exists, and whether it is shown (git reads it; no include is followed). */
export function admittedConfig(home: string): ConfigVerdict[] {
  const verdicts: ConfigVerdict[] = [];
  for (const rel of ADMITTED_CONFIG_FILES) {
    const path = join(home, rel);
    const stat = lstatOrUndefined(path);
    if (stat === undefined) continue;
    if (!stat.isFile()) {
      verdicts.push({ path, shown: false, why: 'not a plain file' });
      continue;
    }
    const listed = spawnSync('git', ['config', '--file', path, '--no-includes', '--name-only', '--list', '-z'], { encoding: 'utf8', timeout: 5_000 });
    if (listed.status !== 0 || typeof listed.stdout !== 'string') {
      verdicts.push({ path, shown: false, why: 'git could not read it' });
      continue;
    }
    const keys = listed.stdout.split('\0').filter((key) => key !== '');
    const other = keys.find((key) => !GIT_INERT_KEYS.some((re) => re.test(key.toLowerCase())));
    verdicts.push(other === undefined ? { path, shown: true } : { path, shown: false, why: `it sets ${other}, which may run a command or hold a secret` });
  }
  return verdicts;
}

/**
 * The folders programs come from, shown read-only when they are in an absent folder (a home): each
 * PATH folder there, and for a link on it the package it leads to: the link target's folder, or the
 * prefix above a `bin` folder (a virtualenv, an nvm version, an npm package). Never a home itself,
 * an absent folder itself, or a folder at the top of a home (`~/bin`'s prefix is the home, `~/.local/bin`'s
 * is `~/.local` with every program's data): those are left at the target's own folder, or out.
 */
export function programRoots(pathFolders: readonly string[], absent: readonly string[], homes: readonly string[] = absent): string[] {
  const roots = new Set<string>();
  const inAbsent = (path: string) => absent.some((folder) => isWithin(path, folder));
  const tops = [...absent, ...homes];
  // Shown whole only when below a folder at the top of a home or an absent folder: two levels down or more.
  const deepEnough = (folder: string) => !tops.some((top) => folder === top || dirname(folder) === top);
  // Never a folder that is or holds a home or an absent folder, nor a hidden folder at a home's top.
  const admissible = (folder: string) =>
    !tops.some((top) => isWithin(top, folder)) && !homes.some((home) => dirname(folder) === home && basename(folder).startsWith('.'));
  for (const folder of pathFolders) {
    if (!inAbsent(folder) || !isFolder(folder) || !admissible(folder)) continue;
    roots.add(folder);
    // A link on PATH (npm's and pipx's bin folders) leads to its package: that folder, or the
    // prefix above a `bin` folder (a virtualenv, an nvm version), is what the program loads.
    for (const name of namesIn(folder)) {
      const entry = join(folder, name);
      if (lstatOrUndefined(entry)?.isSymbolicLink() !== true) continue;
      let target: string;
      try {
        // Every link on the way resolved: a folder link in the chain (~/deep -> ~) is seen for what it is.
        target = realpathSync(entry);
        if (!statSync(target).isFile()) continue;
      } catch {
        continue;
      }
      // A link within its own folder (rustup's proxies) needs nothing beyond it.
      if (!inAbsent(target) || isWithin(target, folder)) continue;
      const parent = dirname(target);
      const prefix = parent.endsWith('/bin') ? dirname(parent) : parent;
      if (deepEnough(prefix) && admissible(prefix)) roots.add(prefix);
      else if (admissible(parent)) roots.add(parent);
    }
  }
  return outermost([...roots]);
}

/**
 * Links among a home's hidden names and `~/bin` (and below them, through real folders, eight levels
 * down: `~/.config/systemd/user/x.service`) that lead into the folders a contained command writes:
 * a dotfiles checkout linked into the home (`~/.bashrc` -> `~/dotfiles/bashrc`, stow's way). A
 * shell, git, systemd or an agent reads what such a link leads to when it starts, so what the
 * command writes there is kept aside (contain/change-judge.ts). Bounded: 20,000 entries a home;
 * `complete` is false where that bound cut the look short (the run says so).
 */
export function homeLinksInto(homes: readonly string[], roots: readonly string[]): { links: Array<{ link: string; target: string }>; complete: boolean } {
  const found: Array<{ link: string; target: string }> = [];
  let complete = true;
  for (const home of new Set(homes)) {
    let budget = 20_000;
    // Nearest first: a dotfiles checkout's links sit near the top (~/.bashrc, ~/.config/nvim).
    const queue: Array<{ folder: string; depth: number }> = [{ folder: home, depth: 1 }];
    while (queue.length > 0) {
      const { folder, depth } = queue.shift()!;
      for (const name of namesIn(folder)) {
        if (--budget < 0) {
          complete = false;
          break;
        }
        if (depth === 1 && !name.startsWith('.') && name !== 'bin') continue;
        const path = join(folder, name);
        const stat = lstatOrUndefined(path);
        if (stat?.isSymbolicLink()) {
          let target: string;
          try {
            target = realpathSync(path);
          } catch {
            continue;
          }
          if (roots.some((root) => isWithin(target, root))) found.push({ link: path, target });
        } else if (stat?.isDirectory() && depth < 8) queue.push({ folder: path, depth: depth + 1 });
      }
      if (budget < 0) break;
    }
  }
  return { links: found, complete };
}

function homesOfProcesses(): string[] {
  const found: string[] = [];
  for (const pid of namesIn('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    let argv: string[];
    let environ: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv.some((arg) => /keyway|cli\/main\.(js|ts)$/.test(arg))) continue;
    let cwd = '/';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // Gone, or not ours to read: relative homes resolve against /.
    }
    const variable = environ.find((entry) => entry.startsWith('KEYWAY_HOME='));
    if (variable !== undefined && variable.length > 'KEYWAY_HOME='.length) found.push(resolve(cwd, variable.slice('KEYWAY_HOME='.length)));
    argv.forEach((arg, i) => {
      if (arg === '--home' && argv[i + 1]) found.push(resolve(cwd, argv[i + 1]!));
      else if (arg.startsWith('--home=')) found.push(resolve(cwd, arg.slice('--home='.length)));
    });
  }
  return found;
}

/** The user homes below the folders that hold them (/home/alice in /home). */
function homeFoldersInside(homes: readonly string[]): string[] {
  return homes.flatMap((home) => (home === '/home' ? namesIn(home).map((name) => join(home, name)) : []));
}

function passwdEntries(): Array<{ uid: number; home: string }> {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    const fields = line.split(':');
    return fields.length >= 7 ? [{ uid: Number(fields[2]), home: fields[5]! }] : [];
  });
}

function uidMinimum(): number {
  try {
    const match = /^\s*UID_MIN\s+([0-9]+)/m.exec(readFileSync('/etc/login.defs', 'utf8'));
    if (match) return Number(match[1]);
  } catch {
    // No login.defs: the common default.
  }
  return 1000;
}

/** The paths not inside another of them. */
export function outermost(paths: readonly string[]): string[] {
  const unique = [...new Set(paths)].sort((a, b) => a.length - b.length);
  return unique.filter((path, i) => !unique.slice(0, i).some((other) => isWithin(path, other)));
}

function namesIn(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Whether `uid`/`gid` may reach a path by the mode bits on the way (search on each folder, read on
 * the path itself): bwrap mounts as the command's uid, and a path it cannot reach fails the run.
 */
export function reachableAs(path: string, uid: number, gid: number): boolean {
  const allowed = (stat: { uid: number; gid: number; mode: number }, bit: number) =>
    stat.uid === uid ? (stat.mode & (bit << 6)) !== 0 : stat.gid === gid ? (stat.mode & (bit << 3)) !== 0 : (stat.mode & bit) !== 0;
  try {
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if (!allowed(statSync(dir), 1)) return false;
      if (dir === '/') break;
    }
    return allowed(statSync(path), 4);
  } catch {
    return false;
  }
}

interface MountEntry {
  device: string;
  /** The path within its file system that is mounted. */
  root: string;
  /** Where it is mounted. */
  point: string;
}

/** /proc/self/mountinfo's entries (the kernel escapes a space, tab, newline and backslash in a path as \ooo). */
export function mountEntries(text: string): MountEntry[] {
  const decoded = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields.length >= 5)
    .map((fields) => ({ device: fields[2]!, root: decoded(fields[3]!), point: decoded(fields[4]!) }));
}

/**
 * Every other path where what is at `path` can be reached through a bind mount: a home bound at
 * /home/alice from /srv/store/alice is there at both. realpath sees links, not binds, so a folder
 * made absent, or one of keyway's homes, would show at its other name. From the mount table: the
 * mount that holds `path`, the path within its file system, and each mount of the same file system
 * whose root holds that path.
 */
export function mountAliases(path: string, entries: readonly MountEntry[]): string[] {
  const holding = entries.filter((m) => isWithin(path, m.point)).sort((a, b) => b.point.length - a.point.length)[0];
  if (holding === undefined) return [];
  const inside = join(holding.root, relative(holding.point, path));
  const aliases = new Set<string>();
  for (const m of entries) {
    if (m.device !== holding.device || !isWithin(inside, m.root)) continue;
    const alias = join(m.point, relative(m.root, inside));
    if (alias !== path) aliases.add(alias);
  }
  return [...aliases];
}

/** The paths and their aliases through bind mounts (mountAliases), read once from this process's mount table. */
export function withMountAliases(paths: readonly string[]): string[] {
  let entries: MountEntry[] = [];
  try {
    entries = mountEntries(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return [...paths];
  }
  return [...new Set([...paths, ...paths.flatMap((path) => mountAliases(path, entries))])];
}
