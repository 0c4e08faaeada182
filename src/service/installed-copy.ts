import { chmodSync, cpSync, existsSync, lchownSync, lstatSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';

// The code the service runs is a copy that no user but root can change. `keyway service install`
// run from a checkout or a per-user npm prefix would otherwise point the unit at files the person
// owns, and an agent running as that person could rewrite keyway's main.js, which then runs as the
// service user at its next start and reads the master key. So install copies keyway (the files its
// package ships, and its production dependencies, found from package.json as Node resolves them)
// into a folder of its own, root's and writable by no one else, and the node binary too unless it
// already sits in such a place; then it checks every file of ExecStart and every folder above it.

export class NotRootOwned extends Error {}

/** The package keyway runs from: two folders above dist/cli/main.js (or src/cli/main.ts). */
export function packageRoot(main = realpathSync(process.argv[1]!)): string {
  return resolve(dirname(main), '..', '..');
}

/**
 * Installs a copy of the package at `root` into `target` (replacing an earlier one whole) and
 * returns the command that runs it: [node, main.js].
 */
export function installCopy(root: string, target: string, node = process.execPath): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files?: string[]; bin?: Record<string, string> };
  const main = pkg.bin?.['keyway'];
  if (main === undefined) throw new Error(`${root} is not keyway's package (no bin.keyway in its package.json)`);
  checkFolderChain(dirname(target));
  const staging = `${target}.new-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const entry of ['package.json', ...(pkg.files ?? [])]) {
      if (existsSync(join(root, entry))) cpSync(join(root, entry), join(staging, entry), { recursive: true, verbatimSymlinks: true });
    }
    for (const dir of productionPackages(root)) cpSync(dir, join(staging, dir.slice(root.length + 1)), { recursive: true, verbatimSymlinks: true });
    let nodePath = realpathSync(node);
    // In place only where it is root's alone and every user may reach it (the service user runs it).
    if (!rootOwnedChain(nodePath) || !reachableByAll(nodePath)) {
      cpSync(nodePath, join(staging, 'bin', 'node'));
      nodePath = join(target, 'bin', 'node');
    }
    closeUp(staging);
    rmSync(`${target}.old`, { recursive: true, force: true });
    if (existsSync(target)) renameSync(target, `${target}.old`);
    renameSync(staging, target);
    rmSync(`${target}.old`, { recursive: true, force: true });
    const command = [nodePath, join(target, main)];
    for (const path of command) checkRootOwned(path);
    return command;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The single executable's copy: the file itself, as `bin/keyway` in `target` (replacing an earlier
 * copy whole), root's and writable by no one else, as installCopy makes the package's. Returns the
 * command that runs it: [keyway].
 */
export function installExecutableCopy(target: string, executable = process.execPath): string[] {
  checkFolderChain(dirname(target));
  const staging = `${target}.new-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    cpSync(realpathSync(executable), join(staging, 'bin', 'keyway'));
    closeUp(staging);
    rmSync(`${target}.old`, { recursive: true, force: true });
    if (existsSync(target)) renameSync(target, `${target}.old`);
    renameSync(staging, target);
    rmSync(`${target}.old`, { recursive: true, force: true });
    const command = [join(target, 'bin', 'keyway')];
    for (const path of command) checkRootOwned(path);
    return command;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The folders of the production dependencies, as Node would resolve each from its dependant (nested ones come with their parent). */
export function productionPackages(root: string): string[] {
  const found = new Set<string>();
  const queue: Array<{ name: string; from: string }> = [];
  const enqueue = (dir: string) => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) queue.push({ name, from: dir });
  };
  enqueue(root);
  while (queue.length > 0) {
    const { name, from } = queue.shift()!;
    const dir = resolvePackage(name, from, root);
    if (dir === undefined || found.has(dir)) continue;
    found.add(dir);
    enqueue(dir);
  }
  // Only the outermost: a package nested in another's node_modules is copied with it.
  return [...found].filter((dir) => ![...found].some((other) => other !== dir && dir.startsWith(`${other}${sep}`))).sort();
}

function resolvePackage(name: string, from: string, root: string): string | undefined {
  for (let dir = from; dir.startsWith(root); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate).startsWith(root) ? candidate : undefined;
    if (dir === root) break;
  }
  return undefined;
}

/**
 * Root's, writable by no one else, and readable by every user (the service user runs it, whatever
 * umask the checkout was made under): every file and folder of the copy.
 */
function closeUp(path: string): void {
  const stat = lstatSync(path);
  lchownSync(path, 0, 0);
  if (stat.isSymbolicLink()) return;
  chmodSync(path, stat.isDirectory() || (stat.mode & 0o111) !== 0 ? 0o755 : 0o644);
  if (stat.isDirectory()) for (const name of readdirSync(path)) closeUp(join(path, name));
}

/** Whether every user may run `path`: it is executable by others, and every folder above it searchable. */
function reachableByAll(path: string): boolean {
  if ((statSync(path).mode & 0o001) === 0) return false;
  for (let at = dirname(path); ; at = dirname(at)) {
    if ((statSync(at).mode & 0o001) === 0) return false;
    if (at === dirname(at)) return true;
  }
}

/** Whether `path` and every folder above it are root's and writable by no one else. */
export function rootOwnedChain(path: string): boolean {
  return chainProblem(path) === undefined;
}

function chainProblem(path: string): string | undefined {
  for (let at = path; ; at = dirname(at)) {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(at);
    } catch {
      return `${at} is not there`;
    }
    if (stat.uid !== 0) return `${at} belongs to uid ${stat.uid}`;
    if ((stat.mode & 0o022) !== 0) return `${at} is writable by ${stat.mode & 0o002 ? 'every user' : 'its group'}`;
    if (at === dirname(at)) return undefined;
  }
}

/** Refuses a path of the service's command that another user could change, naming it. */
export function checkRootOwned(path: string): void {
  const problem = chainProblem(path);
  if (problem !== undefined) throw new NotRootOwned(`${path}: ${problem}; the service would run code another user can change`);
}

/** The folder the copy goes in must already be root's alone, up to /. */
function checkFolderChain(folder: string): void {
  const problem = chainProblem(folder);
  if (problem !== undefined && existsSync(folder)) throw new NotRootOwned(`${folder}: ${problem}; the service would run code another user can change`);
  if (!existsSync(folder)) {
    const parent = dirname(folder);
    if (!existsSync(parent)) throw new NotRootOwned(`${folder}: its folder ${parent} is not there`);
    checkFolderChain(parent);
  }
}
