// keyway runs itself again: `keyway start` re-executes itself under its runtime settings, forks
// proxy.workers' processes, and starts one-shot children and run --contain's helper. It comes in two
// shapes, and each child must be started the way its parent was:
// - the package: Node runs dist/cli/main.js, and a child is Node running another file under dist/;
// - the single executable (release/keyway-linux-*, Node's single executable applications): one file
//   holding Node and all of keyway, with no dist/ beside it. A child re-runs that same file with its
//   role as its first two arguments (ROLE_FLAG, the role), which cli/single-executable-main.ts reads
//   and removes before the role's module runs, so the module sees the arguments it sees under dist/.
// Files read at run time (the dashboard, the example config) are the executable's assets there.
import { readFileSync } from 'node:fs';
import * as sea from 'node:sea';
import { fileURLToPath } from 'node:url';

/** The argument that names a child's role to the single executable. */
export const ROLE_FLAG = '--keyway-role';

/** The modules a child process is started from, by their path under src/ without extension. */
export const OWN_ROLES = ['contain/inside', 'config/load-child', 'tls/bundle-child', 'app/workers/worker-main'] as const;
export type OwnRole = (typeof OWN_ROLES)[number];

/** Whether this process is the single executable (Node reports it; false under `node dist/...`). */
export function inSingleExecutable(): boolean {
  return typeof sea.isSea === 'function' && sea.isSea();
}

/**
 * The program and first arguments that start `role` under Node's options `nodeOptions`: Node, the
 * options and the module's file (`entry`, beside the caller's own module) in the package; the
 * executable itself, the options as one NODE_OPTIONS_FLAG argument, and its role in the single executable.
 */
export function ownChildCommand(entry: URL, role: OwnRole, nodeOptions: readonly string[] = []): [string, ...string[]] {
  if (inSingleExecutable()) return [process.execPath, ...nodeOptionsArgument(nodeOptions), ROLE_FLAG, role];
  return [process.execPath, ...nodeOptions, fileURLToPath(entry)];
}

/**
 * How the single executable takes Node's own options: Node reads and removes `--node-options=...`
 * from its arguments (the executable is built with execArgvExtension "cli", scripts/release/sea.mjs),
 * since its other arguments are keyway's. Empty when there are none.
 */
export function nodeOptionsArgument(nodeOptions: readonly string[]): string[] {
  if (nodeOptions.length === 0) return [];
  if (nodeOptions.some((option) => /\s/.test(option))) throw new Error('a Node option with a space cannot be passed to the single executable');
  return [`--node-options=${[...new Set(nodeOptions)].join(' ')}`];
}

/**
 * The file that must exist for a child started by ownChildCommand: the module's file in the package,
 * the executable in the single executable (run --contain keeps the folders above it reachable).
 */
export function ownChildFile(entry: URL): string {
  return inSingleExecutable() ? process.execPath : fileURLToPath(entry);
}

/**
 * A file shipped with keyway: from disk in the package (`onDisk`), the asset `name` in the single
 * executable (scripts/release/sea.mjs puts each there under the name it has in the package).
 */
export function packagedFile(name: string, onDisk: URL): Buffer {
  if (inSingleExecutable()) return Buffer.from(sea.getRawAsset(name));
  return readFileSync(onDisk);
}

/** The names of the shipped files under `folder/` in the single executable (empty elsewhere). */
export function packagedNames(folder: string): string[] {
  if (!inSingleExecutable()) return [];
  return sea
    .getAssetKeys()
    .filter((key) => key.startsWith(`${folder}/`))
    .map((key) => key.slice(folder.length + 1));
}
