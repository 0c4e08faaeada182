import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

// What `sh -c 'command -v NAME'` answers for a program (not a builtin), without a shell per name:
// keyway run --contain checks five to seven programs before each run.

/** Whether PATH (`path`, as the programs will be run with) finds an executable file named `program`. */
export function onPath(program: string, path: string | undefined): boolean {
  for (const dir of (path ?? '').split(':')) {
    // An empty entry is the working folder, for a shell as for spawn's own search.
    const file = join(dir === '' ? '.' : dir, program);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      // Not here, or not executable: the next folder.
    }
  }
  return false;
}
