// keyway as a user other than root can run it, wherever this checkout is: a test that runs keyway
// (or one of its modules) as another uid (keyway's in a pod, an agent's, a service user's) cannot
// use the checkout itself when it was cloned into a folder only root may enter (a 0700 mktemp -d).
// So it runs a copy, made as `keyway service install` makes one (service/installed-copy.ts): dist/,
// the production node_modules and package.json, root's, readable by everyone, with node copied too
// when the checkout's is out of others' reach. One copy per test run, in the folder the global setup
// made (setup/runnable-keyway.global.ts): the first test process to need it makes it, under a lock;
// the others wait for it.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { installCopy, packageRoot } from '../../src/service/installed-copy.ts';

export interface RunnableKeyway {
  /** The copy's folder: dist/, node_modules/, package.json. */
  root: string;
  /** A node binary every user may run. */
  node: string;
  /** dist/cli/main.js of the copy. */
  cli: string;
}

const WAIT_MS = 120_000;

export function runnableKeyway(): RunnableKeyway {
  const parent = inject('runnableKeywayParent');
  const ready = join(parent, 'ready.json');
  if (!existsSync(ready)) {
    let mine = false;
    try {
      mkdirSync(join(parent, 'lock'));
      mine = true;
    } catch {
      // Another test process is making it.
    }
    if (mine) {
      const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
      const [node, cli] = installCopy(packageRoot(main), join(parent, 'keyway'));
      writeFileSync(ready, JSON.stringify({ root: join(parent, 'keyway'), node: node!, cli: cli! } satisfies RunnableKeyway));
    } else {
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (const started = Date.now(); !existsSync(ready); ) {
        if (Date.now() - started > WAIT_MS) throw new Error(`no runnable copy of keyway in ${parent} after ${WAIT_MS / 1000}s`);
        Atomics.wait(pause, 0, 0, 100);
      }
    }
  }
  return JSON.parse(readFileSync(ready, 'utf8')) as RunnableKeyway;
}

/** A test's own script (a fixture), copied beside the runnable copy so that another uid can run it with its node. */
export function runnableFile(path: string): string {
  const target = join(inject('runnableKeywayParent'), basename(path));
  copyFileSync(path, target);
  chmodSync(target, 0o644);
  return target;
}
