// The single executable's main script (scripts/release/sea.mjs): it loads keyway's bundle, kept as
// the executable's assets `bundle/<file>`, as ES modules under a file: URL of their own. Why not one
// script: V8 compiles a module's whole text before it runs any of it, and the bundle with every npm
// package in it is 7 MB (0.3 s and 60 MiB more than `node dist/cli/main.js` to print --version).
// Split into chunks, as dist/ is, a command compiles only what it imports, and Node's compile cache
// (cli/compile-cache.ts) keeps them as it does dist/'s files.
// Node gives the main script import() of its built-in modules only, so the first module is loaded
// with require() (an ES module without top-level await may be required), through the hooks below,
// and its import() of keyway's entry goes through them too. Nothing here is keyway's code: it runs
// before it, so it is plain JavaScript, and it serves nothing but the assets under `bundle/`.
import { createRequire, registerHooks } from 'node:module';
import { getAsset } from 'node:sea';

const ROOT = 'file:///keyway-single-executable/bundle/';
// The first module, required: it starts keyway's entry (which has top-level await, so cannot be required).
const BOOT = `${ROOT}boot.js`;
const BOOT_SOURCE = "export const started = import('./cli/single-executable-main.js');";

registerHooks({
  resolve(specifier, context, next) {
    if (specifier.startsWith(ROOT)) return { url: specifier, format: 'module', shortCircuit: true };
    if (context.parentURL?.startsWith(ROOT) && /^\.\.?\//.test(specifier)) {
      return { url: new URL(specifier, context.parentURL).href, format: 'module', shortCircuit: true };
    }
    return next(specifier, context);
  },
  load(url, context, next) {
    if (!url.startsWith(ROOT)) return next(url, context);
    if (url === BOOT) return { format: 'module', source: BOOT_SOURCE, shortCircuit: true };
    return { format: 'module', source: getAsset(`bundle/${url.slice(ROOT.length)}`, 'utf8'), shortCircuit: true };
  },
});

await createRequire(BOOT)(BOOT).started;
