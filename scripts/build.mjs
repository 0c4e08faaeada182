// `npm run build` (and `prepare`, `pretest`, `start`): compile src/ to dist/, then copy the
// dashboard's files (HTML, CSS, browser ES modules: no compiler touches them) beside the compiled
// admin server, which serves them from ./dashboard/ next to itself. Runs on any Node >= 20.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The project's own TypeScript, run by the Node running this script (no PATH lookup needed).
const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
const target = join(root, 'dist', 'admin', 'dashboard');
rmSync(target, { recursive: true, force: true });
cpSync(join(root, 'src', 'admin', 'dashboard'), target, { recursive: true });
// The `keyway` executable runs as a program where it is linked without npm (a PATH entry, a
// symlink in ~/bin): npm marks a package's bin executable when it installs it, tsc does not.
chmodSync(join(root, 'dist', 'cli', 'main.js'), 0o755);
