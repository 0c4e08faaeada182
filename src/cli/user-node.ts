// Which `node` the user's own programs run, and whether it honours the proxy variables.
//
// Node reads HTTPS_PROXY only from version 24 (with NODE_USE_ENV_PROXY=1, which `keyway env` sets);
// an older Node connects directly, so its requests go around keyway without a word. npm, npx and
// `npm run` put node_modules/.bin first on PATH (keyway's own Node 24 may live there), so the node
// a user's shell or agent would run is looked up on PATH without those entries.

import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';

/** The first Node major that honours HTTPS_PROXY (with NODE_USE_ENV_PROXY=1). */
export const FIRST_PROXY_NODE = 24;

export interface UserNode {
  path: string;
  /** As `node --version` prints it, e.g. v20.19.2; undefined when it could not be read. */
  version: string | undefined;
  major: number | undefined;
  /** The command names this node (by its path, or its #! line's), rather than the PATH finding it. */
  named?: boolean;
}

/** PATH without node_modules/.bin entries. */
export function userPath(path: string | undefined): string {
  return (path ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && !/(^|[\\/])node_modules[\\/]\.bin$/.test(dir.replace(/[\\/]+$/, '')))
    .join(delimiter);
}

export async function findOnPath(name: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The node on the user's PATH and its version, or undefined when there is none. */
export async function findUserNode(env: NodeJS.ProcessEnv): Promise<UserNode | undefined> {
  const path = await findOnPath('node', userPath(env['PATH']));
  return path === undefined ? undefined : nodeAt(path, env);
}

/**
 * The node a command runs on: itself when it is a node named by path (/opt/node24/bin/node), the
 * one its #! line names by path, else the PATH's (issue 48: run warned about the PATH's node for a
 * command that names another).
 */
export async function nodeCommandRuns(command: string, env: NodeJS.ProcessEnv): Promise<UserNode | undefined> {
  if (command.includes('/') && /^(node|nodejs)$/.test(basename(command))) return { ...(await nodeAt(command, env)), named: true };
  const file = command.includes('/') ? command : await findOnPath(command, userPath(env['PATH']));
  const named = file === undefined ? undefined : await shebangNode(file);
  return named === undefined ? findUserNode(env) : { ...(await nodeAt(named, env)), named: true };
}

/** The node a script's #! line names by its path (`#!/opt/node/bin/node`), not through env. */
async function shebangNode(file: string): Promise<string | undefined> {
  try {
    const handle = await open(file, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(128), 0, 128, 0);
      const first = buffer.subarray(0, bytesRead).toString('latin1').split('\n')[0] ?? '';
      const match = /^#!\s*(\/\S*\/(?:node|nodejs))(\s|$)/.exec(first);
      return match?.[1];
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

async function nodeAt(path: string, env: NodeJS.ProcessEnv): Promise<UserNode> {
  const version = await new Promise<string | undefined>((resolve) => {
    execFile(path, ['--version'], { timeout: 5_000, env: { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? '' } }, (err, stdout) => {
      resolve(err ? undefined : /^v?\d+\.\d+\.\d+/.exec(stdout.trim())?.[0]);
    });
  });
  const major = version === undefined ? undefined : Number(/\d+/.exec(version)?.[0]);
  return { path, version, major };
}

/** Why this node goes around keyway, with the fix; undefined when it honours the proxy variables. */
export function nodeBypassWarning(node: UserNode): string | undefined {
  if (node.major !== undefined && node.major >= FIRST_PROXY_NODE) return undefined;
  const what = node.version === undefined ? 'a Node whose version could not be read' : `Node ${node.version}`;
  return (
    `${node.named === true ? 'the node the command runs' : 'the node on your PATH'} (${node.path}) is ${what}, which ignores HTTPS_PROXY: Node programs run with it go around keyway. ` +
    `Fix: put Node ${FIRST_PROXY_NODE} or later first on PATH (keyway sets NODE_USE_ENV_PROXY=1 for it), ` +
    `or have the program use a proxy agent itself (undici EnvHttpProxyAgent)`
  );
}

const NODE_LAUNCHERS = new Set(['node', 'nodejs', 'npm', 'npx', 'pnpm', 'pnpx', 'yarn', 'tsx', 'ts-node']);

/** Whether this command runs on node: a launcher by name, or a script whose #! line names node. */
export async function runsOnNode(command: string, path: string | undefined): Promise<boolean> {
  if (NODE_LAUNCHERS.has(basename(command))) return true;
  const file = command.includes('/') ? command : await findOnPath(command, path ?? '');
  if (file === undefined) return false;
  try {
    const handle = await open(file, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(128), 0, 128, 0);
      const first = buffer.subarray(0, bytesRead).toString('latin1').split('\n')[0] ?? '';
      return first.startsWith('#!') && /\bnode\b/.test(first);
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}
