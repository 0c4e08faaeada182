// `npm run build` (and `prepare`, `pretest`, `start`): bundle src/ into dist/ (scripts/bundle.mjs
// says how and why), then copy the dashboard's files (HTML, CSS, browser ES modules: no compiler
// touches them) beside where the admin server's module would be, which serves them from
// ./dashboard/ next to itself. Type checking is `tsc --noEmit` (npm run typecheck, pretest).
// Runs on any Node >= 20.
import { chmodSync, cpSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';
import { bundleOptions } from './bundle.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
// From empty: chunks are named by their content, and an old build's files must not linger.
rmSync(dist, { recursive: true, force: true });
const { input, output } = bundleOptions(root);
const bundle = await rolldown(input);
try {
  await bundle.write(output);
} finally {
  await bundle.close();
}
cpSync(join(root, 'src', 'admin', 'dashboard'), join(dist, 'admin', 'dashboard'), { recursive: true });
// The `keyway` executable runs as a program where it is linked without npm (a PATH entry, a
// symlink in ~/bin): npm marks a package's bin executable when it installs it, the bundler does not.
chmodSync(join(dist, 'cli', 'main.js'), 0o755);
