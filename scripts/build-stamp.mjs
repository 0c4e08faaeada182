// What `keyway --version` names: the package's version and the commit it was built from, stamped
// into the bundle at build (dist/ and the single executable), since neither has a .git beside it
// once installed. `-dirty` when the working tree had changes to tracked files; `unknown` when the
// build ran outside a git checkout and KEYWAY_BUILD_COMMIT does not name it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

function git(root, args) {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * { version, commit } for the checkout at `root`. KEYWAY_BUILD_COMMIT names the commit of a tree
 * built without its .git (an exported tree, a copy packed by test/integration/packed-install.test.ts).
 */
export function buildStamp(root) {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const given = process.env.KEYWAY_BUILD_COMMIT;
  if (given !== undefined && given !== '') {
    if (!/^[0-9a-f]{7,40}(-dirty)?$/.test(given))
      throw new Error(`KEYWAY_BUILD_COMMIT must be a commit's hex digits (and -dirty), not ${JSON.stringify(given)}`);
    return { version, commit: given };
  }
  const head = git(root, ['rev-parse', '--short=12', 'HEAD']);
  if (head === undefined) return { version, commit: 'unknown' };
  const dirty = git(root, ['status', '--porcelain', '--untracked-files=no']);
  return { version, commit: dirty ? `${head}-dirty` : head };
}

/** The bundler's `define` that puts the stamp where src/version.ts reads it. */
export function stampDefine(stamp) {
  return { __KEYWAY_BUILD__: JSON.stringify(stamp) };
}

/** The commit's time in seconds (SOURCE_DATE_EPOCH for reproducible artifacts), or undefined. */
export function commitEpoch(root) {
  const at = git(root, ['log', '-1', '--format=%ct']);
  return at === undefined ? undefined : Number(at);
}
