import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { readOnEntry } from './project-settings.ts';

// Which of a contained command's writes reach the host when it exits, and which are kept aside for
// the person to review (`keyway contain review`). The command writes into an overlay
// (contain/overlay.ts), so every change it made is known; this decides each one, and it admits
// only what runs nothing later on its own:
//
// - Anywhere under a folder named `.git` (any case), only git's own data in a repository that was
//   there before the run: objects, refs, reflogs, the index, HEAD and the other *_HEAD files,
//   COMMIT_EDITMSG, packed-refs (so that `git add` and `git commit` inside land). Everything else
//   git reads there (config, config.worktree, commondir, hooks, info/, worktrees, modules, a lock,
//   a link) and every `.git` made, moved or replaced by the command is kept aside: git runs code
//   its configuration names, and finds a repository in every folder from the one it starts in up.
// - Nothing in another version control system's folder (.hg, .jj, .svn, .bzr, _darcs, .pijul,
//   Fossil's checkout file): each runs hooks its repository's configuration names.
// - No folder made into a git repository by other names: a HEAD outside a .git, or objects/ or
//   refs/ beside a HEAD (git takes such a folder for a bare repository).
// - Nothing in a folder on PATH, or that folder itself: a program there runs by its name. `~/bin`
//   counts as one: Debian's and Ubuntu's ~/.profile put it on PATH once it exists. So does
//   XDG_CONFIG_HOME where it is set (git and shells read their configuration there).
// - Nothing hidden at the top of a home folder (`~/.bash_profile`, `~/.config/…`, `~/.local/bin/…`,
//   every start-up file a shell, git or another tool reads, and those yet to be invented), unless
//   the person named that folder with --allow-write (`~/.claude`).
// - Nothing a tool reads on its own when a person opens or enters a folder (contain/project-
//   settings.ts): below each writable folder, no hidden name but a few inert ones (.gitignore,
//   .editorconfig, …), so no .claude/settings.json, .mcp.json, .vscode/tasks.json or .envrc, at any
//   depth, made, changed, linked or deleted; and no mise.toml. Not below node_modules, and not in a
//   hidden folder of a home the person named (~/.claude), which is an application's state.
// - Files, folders, links and deletions only: a FIFO, a socket or a device is never applied. A
//   link only where it is relative and stays inside its folder.
//
// What lands, because it runs only when the person runs it: a changed Makefile, package.json
// script, build configuration or any other plain file of the project.

export type ChangeKind = 'file' | 'dir' | 'symlink' | 'deleted' | 'other';

export interface Change {
  /** The host path the change is to. */
  path: string;
  kind: ChangeKind;
  /** A link's target, as the command wrote it. */
  target?: string;
}

export interface JudgeContext {
  /** The writable folder the change is in (the working folder or an --allow-write folder). */
  root: string;
  /** The home folders (the caller's and the command user's). */
  homes: readonly string[];
  /** The absolute folders of the command's PATH. */
  pathFolders: readonly string[];
  /** Whether a path was a folder (not a link) on the host before the run. */
  wasFolder(path: string): boolean;
  /** Whether a folder was a git repository's on the host before the run, whatever its name (HEAD, objects/, refs/: a bare one, a --separate-git-dir). */
  wasGitFolder(path: string): boolean;
  /** PATH's relative entries (node_modules/.bin, `.`): a folder of that name anywhere is on PATH wherever a person stands in its parent. */
  relativePathEntries?: readonly string[];
  /** What the person's git configuration names in the writable folders (contain/git-configured.ts): hooks, includes, scripts. */
  gitConfigured?: readonly string[];
  /** Where a link of the home's start-up names leads inside the writable folders (contain/home-view.ts homeLinksInto): `~/.bashrc` -> `~/dotfiles/bashrc`. */
  homeLinked?: readonly { link: string; target: string }[];
  /** What the host has below a folder (as paths under the root), for a folder the command deleted whole; bounded. */
  below?(path: string): readonly string[] | undefined;
  /** Whether a path is there once the command's changes are (the command's view at its exit). */
  isThere(path: string): boolean;
  /** The working folder: never taken for an application's state, even inside a hidden folder of a home (`~/.dotfiles`). */
  workdir?: string;
}

export type Verdict = { apply: true } | { apply: false; why: string };

const APPLY: Verdict = { apply: true };

/** What direnv's `use flake`, `use nix` and devenv read beside an .envrc: shell hooks run on entering the folder. */
const DIRENV_LOADS = /^(flake\.(nix|lock)|shell\.nix|default\.nix|devenv\.(nix|yaml|lock)|devbox\.(json|lock))$/;

/** What git writes in its own folder for add, commit, branch, merge and the like; nothing git runs or follows. */
const GIT_DATA: readonly RegExp[] = [
  /^objects$/,
  /^objects\/[0-9a-f]{2}(\/[0-9a-f]{38}|\/[0-9a-f]{62})?$/,
  /^objects\/pack(\/pack-[0-9a-f]{40,64}\.(pack|idx|rev|mtimes|keep|promisor))?$/,
  /^objects\/info(\/packs|\/commit-graph|\/commit-graphs|\/commit-graphs\/commit-graph-chain|\/commit-graphs\/graph-[0-9a-f]{40,64}\.graph)?$/,
  /^refs(\/[A-Za-z0-9._@+-]+)*$/,
  /^logs(\/[A-Za-z0-9._@+-]+)*$/,
  /^(index|HEAD|ORIG_HEAD|FETCH_HEAD|MERGE_HEAD|MERGE_MSG|MERGE_MODE|AUTO_MERGE|CHERRY_PICK_HEAD|REVERT_HEAD|REBASE_HEAD|COMMIT_EDITMSG|packed-refs)$/,
];

/** What a repository is made of: never deleted by a contained command's run. */
const GIT_STRUCTURE = /^(HEAD|index|packed-refs|objects|objects\/pack|objects\/info|refs|refs\/heads|refs\/tags|logs)$/;

export function judgeChange(change: Change, context: JudgeContext): Verdict {
  const { path, kind } = change;
  if (kind === 'other') return { apply: false, why: 'not a file, folder or link' };
  // A link lands only where it stays inside its folder, named relatively: one that leads out
  // could lead anywhere the command cannot write but a person's tools would follow (its own kept-
  // aside changes in /var/tmp among them, where git would find the repository it made).
  if (kind === 'symlink' && !linkStaysInside(path, change.target, context.root))
    return { apply: false, why: `a link that leads out of ${context.root} (${change.target ?? 'unreadable'})` };
  const git = gitPart(context, path);
  if (git !== undefined) {
    if (!context.wasFolder(git.folder) && !context.wasGitFolder(git.folder))
      return { apply: false, why: 'a git repository the command made or moved: git runs what its config names' };
    if (git.inside === '') return kind === 'dir' ? APPLY : { apply: false, why: "the repository's .git replaced" };
    if (kind === 'symlink') return { apply: false, why: 'a link inside .git' };
    if (git.inside.endsWith('.lock') || !GIT_DATA.some((re) => re.test(git.inside)))
      return { apply: false, why: 'git reads it as configuration or code (only objects, refs, logs, the index and HEAD files are applied)' };
    // What holds the repository together is not deleted (HEAD, the index, objects/, refs/, logs/).
    if (kind === 'deleted' && GIT_STRUCTURE.test(git.inside)) return { apply: false, why: 'deleting it would break the repository' };
  } else if (kind !== 'deleted' && makesGitFolder(path, kind, context)) {
    // git takes any folder with HEAD, objects/ and refs/ for a repository (a bare one, whose config
    // may name a work tree and an fsmonitor): such a folder is not made outside a .git.
    return { apply: false, why: 'it makes its folder a git repository (HEAD, objects/ and refs/): git runs what its config names' };
  }
  const configured = (context.gitConfigured ?? []).find((named) => isWithin(path, named));
  if (configured !== undefined) return { apply: false, why: `your git configuration names ${configured}: git runs it` };
  const linked = (context.homeLinked ?? []).find(({ target }) => isWithin(path, target) || (kind === 'deleted' && isWithin(target, path)));
  if (linked !== undefined) return { apply: false, why: `${linked.link} in your home leads here: what reads it at start would read this` };
  const other = otherVcsPart(context.root, path);
  if (other !== undefined) return { apply: false, why: `${other} keeps a version control system's configuration and hooks, which it runs` };
  for (const entry of context.relativePathEntries ?? []) {
    const parent = relative(context.root, dirname(path)).split(sep).join('/');
    const anywhere = entry === '' || entry === '.' || entry === './';
    if (kind !== 'dir' && (anywhere || parent === entry || parent.endsWith(`/${entry}`)))
      return {
        apply: false,
        why: `PATH names ${entry === '' ? 'the current folder' : `"${entry}"`} relative to wherever you stand: a program there runs by its name`,
      };
  }
  for (const folder of [...context.pathFolders, ...context.homes.map((home) => `${home}${sep}bin`)]) {
    // pathFolders holds XDG_CONFIG_HOME too, where git and shells read their configuration.
    if (isWithin(path, folder)) return { apply: false, why: `in ${folder}, a folder on PATH: a program there runs by its name` };
  }
  for (const home of context.homes) {
    if (!isWithin(path, home) || path === home) continue;
    const first = relative(home, path).split(sep)[0]!;
    const hidden = `${home}${sep}${first}`;
    if (first.startsWith('.') && !isWithin(context.root, hidden))
      return { apply: false, why: `hidden in your home (${first}): shells, git and other tools read such files at start` };
  }
  const stateFolder = isStateFolder(context);
  const onEntry = readOnEntry(context.root, path, stateFolder);
  if (onEntry !== undefined) return { apply: false, why: onEntry };
  // What an .envrc beside it has direnv load on entering the folder (`use flake`, `use nix`, devenv).
  if (!stateFolder && DIRENV_LOADS.test(basename(path).toLowerCase()) && envrcAbove(path, context))
    return { apply: false, why: `the .envrc beside it has direnv load ${basename(path)} when you enter the folder, and run what it says: kept for review` };
  // A folder deleted whole takes what is in it: a hidden file there (.claude/settings.json with its
  // deny rules, an .envrc) is judged as its own deletion would be.
  if (kind === 'deleted' && context.below !== undefined) {
    const held = context.below(path);
    if (held === undefined) return { apply: false, why: 'a folder too large to look through (over 100,000 entries): kept, not deleted' };
    for (const inner of held) {
      const why = readOnEntry(context.root, inner, stateFolder);
      if (why !== undefined) return { apply: false, why: `it holds ${relative(path, inner)}; ${why}` };
    }
  }
  return APPLY;
}

/** A writable folder inside a hidden folder at the top of a home (`~/.claude`, `~/.config/gh`), not the working folder. */
function isStateFolder(context: JudgeContext): boolean {
  if (context.workdir !== undefined && isWithin(context.workdir, context.root)) return false;
  return context.homes.some((home) => {
    // Below the home (isWithin), a first name starting with a dot is a hidden one, `..foo` too.
    return isWithin(context.root, home) && relative(home, context.root).startsWith('.');
  });
}

/** An .envrc in the folder of `path` or any folder above it within the root (`use flake ./nix` reaches down). */
function envrcAbove(path: string, context: JudgeContext): boolean {
  for (let dir = dirname(path); isWithin(dir, context.root); dir = dirname(dir)) {
    if (context.isThere(join(dir, '.envrc'))) return true;
    if (dir === context.root || dir === dirname(dir)) break;
  }
  return false;
}

/**
 * The other version control systems that find their repository from the folder a person is in
 * and run hooks its configuration names (Mercurial, Jujutsu, Subversion, Bazaar, Darcs, Pijul,
 * Fossil): nothing of theirs is applied, not even their data (git's is, being what agents use).
 */
const OTHER_VCS = new Set(['.hg', '.jj', '.svn', '.bzr', '_darcs', '.pijul', '.fslckout', '_fossil_']);

function otherVcsPart(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  if (rel === '' || !isWithin(path, root)) return undefined;
  return rel.split(sep).find((part) => OTHER_VCS.has(part.toLowerCase()));
}

/** A HEAD beside objects/ and refs/, or one of those two beside a HEAD: what git finds a repository by. */
function makesGitFolder(path: string, kind: ChangeKind, context: JudgeContext): boolean {
  const name = basename(path);
  const folder = dirname(path);
  if (name === 'HEAD') return true;
  if ((name === 'objects' || name === 'refs') && (kind === 'dir' || kind === 'symlink')) return context.isThere(join(folder, 'HEAD'));
  return false;
}

/**
 * The repository folder on the path below the root (the root itself included): the first named
 * `.git` (any case), or one the host had as a repository under another name; and the path inside it.
 */
function gitPart(context: JudgeContext, path: string): { folder: string; inside: string } | undefined {
  const { root } = context;
  const rel = relative(root, path);
  if (!isWithin(path, root)) return undefined;
  const parts = rel === '' ? [] : rel.split(sep);
  for (let at = 0; at <= parts.length; at++) {
    const folder = [root, ...parts.slice(0, at)].join(sep);
    const named = at > 0 && parts[at - 1]!.toLowerCase() === '.git';
    if (named || (at < parts.length && context.wasGitFolder(folder))) return { folder, inside: parts.slice(at).join('/') };
  }
  return undefined;
}

/** A relative target that, read from the link's folder, stays inside the root (by its name alone). */
function linkStaysInside(path: string, target: string | undefined, root: string): boolean {
  if (target === undefined || target === '' || isAbsolute(target)) return false;
  return isWithin(resolve(dirname(path), target), root);
}

export function isWithin(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  // `..foo` is a name inside the folder; only `..` itself, or followed by a separator, leads out.
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
