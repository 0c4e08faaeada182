// What to say when `keyway` runs on a Node older than 22.19 (before anything else is loaded: undici
// fails deep in an import before 22, and undici 8 asks for 22.19). The fix depends on where keyway is: a git checkout carries its own
// pinned Node 24 (the `node` devDependency, in node_modules/.bin), which `npm run -s keyway -- …` uses
// because npm puts that folder first on PATH; an installed package has only the Node on PATH.
//
// Loaded by main.ts on the old Node itself: node: built-ins only, nothing newer than Node 18.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The oldest Node keyway runs on: package.json's `engines` (undici 8's own floor), which CI runs the
 * unit tests and the built CLI's smoke on (.ci/run); test/unit/node-too-old.test.ts keeps the three equal.
 */
export const FIRST_SUPPORTED_NODE = { major: 22, minor: 19 } as const;
const FLOOR = `${FIRST_SUPPORTED_NODE.major}.${FIRST_SUPPORTED_NODE.minor}`;

/** Whether `version` (v22.19.0, 24.1.0) is at least the floor; one that cannot be read is not. */
export function supportedNode(version: string): boolean {
  const [, major, minor] = /^v?(\d+)\.(\d+)/.exec(version) ?? [];
  if (major === undefined || minor === undefined) return false;
  return Number(major) > FIRST_SUPPORTED_NODE.major || (Number(major) === FIRST_SUPPORTED_NODE.major && Number(minor) >= FIRST_SUPPORTED_NODE.minor);
}

export interface NodeCheck {
  /** process.version, e.g. v20.19.2. */
  version: string;
  /** process.execPath: which node the PATH found. */
  execPath: string;
  /** The package root: the folder of package.json (two up from src/cli/ or dist/cli/). */
  root: string;
  /** keyway's own arguments, to repeat them in the command to run instead. */
  argv: readonly string[];
}

/**
 * A checkout's pinned Node (the `node` devDependency's binary) when this Node is too old and that
 * one is there: main.ts runs keyway again on it, so `keyway` works from any folder on any Node
 * (a PATH entry, `npm install -g .`). Undefined otherwise.
 */
export function pinnedNodeFor(check: NodeCheck): string | undefined {
  if (supportedNode(check.version)) return undefined;
  const pinned = join(check.root, 'node_modules', 'node', 'bin', 'node');
  return existsSync(pinned) && pinned !== check.execPath ? pinned : undefined;
}

/** The one line to print and exit on, or undefined when this Node is recent enough. */
export function nodeTooOldMessage(check: NodeCheck): string | undefined {
  if (supportedNode(check.version)) return undefined;
  const what = `keyway needs Node.js ${FLOOR} or later, but the node on PATH is ${check.version} (${check.execPath})`;
  const again = ['npm', 'run', '-s', 'keyway', '--', ...check.argv].map(shellWord).join(' ');
  const install = `install Node ${FLOOR}+ (https://nodejs.org/en/download, or \`nvm install ${FIRST_SUPPORTED_NODE.major}\`) and put it first on PATH`;
  // A checkout: the sources are there beside package.json (the published package ships dist/ only).
  if (!existsSync(join(check.root, 'src', 'cli', 'main.ts')) || !existsSync(join(check.root, 'package.json'))) return `${what}: ${install}`;
  const at = `(in ${check.root})`;
  if (existsSync(join(check.root, 'node_modules', '.bin', 'node'))) return `${what}: run this checkout's pinned Node 24 with \`${again}\` ${at}, or ${install}`;
  return `${what}: run \`npm install\` ${at} to get this checkout's pinned Node 24 (not with --ignore-scripts), then \`${again}\`; or ${install}`;
}

/** A word as a POSIX shell reads it back: plain when it can be, single-quoted otherwise. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
