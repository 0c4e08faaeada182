// How src/ becomes dist/: rolldown bundles keyway's own modules into a few chunks, so a start loads
// tens of files rather than hundreds (issue 62, docs/perf/startup.md: the ESM loader's resolve,
// stat and URL work per module was most of `keyway run --contain`'s start). What stays as it was:
//
// - Every npm package is left outside, imported from node_modules as before (undici's deep imports
//   through createRequire especially, and packages loaded lazily must stay lazy).
// - Code splitting, never one file: a lazy `import()` stays a chunk of its own, loaded when it is
//   reached (one file would hoist zod, yaml and prom-client back onto every start).
// - Every file a process or worker is started from is an entry at its own dist/ path (ENTRIES).
// - A module's `import.meta.url` is still the URL its own file would have in an unbundled dist/
//   (dist/contain/run.js, ...), wherever the bundler puts its code: `new URL('./inside.js',
//   import.meta.url)`, `../package.json` and `./dashboard/` keep finding what they name. Which
//   modules may use it, and what for, is listed (MODULE_URL_USERS); any other use fails the build,
//   so a new relative lookup is looked at once rather than found broken in an installed package.
import { existsSync } from 'node:fs';
import { isAbsolute, join, posix, relative } from 'node:path';
import { buildStamp, stampDefine } from './build-stamp.mjs';

/** The files processes and workers are started from, by their path under src/ without extension. */
export const ENTRIES = [
  'cli/main', // the `keyway` executable (package.json bin)
  'contain/inside', // run in the namespaces by contain/run.ts
  'config/load-child', // the config loader's child (config/load-isolated.ts)
  'tls/bundle-child', // writes the CA bundle in a child (tls/bundle-in-child.ts)
  'app/workers/worker-main', // proxy.workers' processes (app/workers/pool.ts)
  // Not a process of its own: test/hostile/sidecar-dns.test.ts imports it from a runnable copy of
  // dist/ to run the very answerer keyway runs for proxy.transparent.dns_listen, as keyway's uid.
  'proxy/transparent/dns-answerer',
];

/** The modules that read import.meta.url, each with what it reaches from it (under dist/ unless it says). */
export const MODULE_URL_USERS = {
  'cli/main.ts': 'the package root (a checkout has src/ beside dist/) and itself, to run again on the pinned Node',
  'contain/run.ts': './inside.js, an entry',
  'contain/program-reach.ts': "./inside.js, an entry (its path, as run.ts's: the folders above it keyway idmaps)",
  'config/load-isolated.ts': './load-child.js, an entry (through process/one-shot-child.ts)',
  'tls/bundle-in-child.ts': './bundle-child.js, an entry (through process/one-shot-child.ts)',
  'app/workers/pool.ts': './worker-main.js, an entry',
  'admin/dashboard-files.ts': './dashboard/, copied by scripts/build.mjs',
  'version.ts': '../package.json, the package root',
  'paths.ts': '../config/keyway.example.yaml, in the package (package.json files)',
  'net/undici.ts': "createRequire: undici's own files, from node_modules",
  'net/node-http.ts': 'createRequire: node:http',
  'builtins.ts': 'createRequire: node:util and node:zlib',
  'config/domain-breadth.ts': 'createRequire: tldts, from node_modules',
  'tls/forge.ts': 'createRequire: node-forge, from node_modules',
  'tls/pkcs12.ts': 'createRequire: node-forge, from node_modules',
};

const MARK = '__keyway_module_url__:';
// A string the bundler carries through untouched; renderChunk turns it back into an expression.
const MARKED = new RegExp(`"${MARK}([^"]+)"`, 'g');

/** A module outside src/ (a package, node:*) is imported at run time, never bundled. */
const external = (id) => !id.startsWith('.') && !isAbsolute(id) && !id.startsWith('\0');

/** Each module's import.meta.url as it would be in an unbundled dist/; refuses an unlisted use. */
function moduleUrls(src) {
  return {
    name: 'keyway-module-urls',
    transform(code, id) {
      if (!id.startsWith(src) || !code.includes('import.meta')) return null;
      const own = relative(src, id).split('\\').join('/');
      // import.meta.dirname, .filename, .resolve, or import.meta passed around: not rewritten here.
      const other = /import\.meta(?!\.url\b)(\.[A-Za-z_$]+)?/.exec(code);
      if (other) this.error(`${own}: ${other[0]} is not handled by the bundle (scripts/bundle.mjs): use import.meta.url`);
      if (!(own in MODULE_URL_USERS)) {
        this.error(`${own} reads import.meta.url: say what it reaches in MODULE_URL_USERS (scripts/bundle.mjs) and check it is found from dist/`);
      }
      const url = JSON.stringify(`${MARK}${own.replace(/\.ts$/, '.js')}`);
      return { code: code.replaceAll('import.meta.url', url), map: null };
    },
    renderChunk(code, chunk) {
      if (!code.includes(MARK)) return null;
      const from = posix.dirname(chunk.fileName);
      const rewritten = code.replace(MARKED, (_, file) => {
        const rel = posix.relative(from, file);
        return `new URL(${JSON.stringify(rel.startsWith('.') ? rel : `./${rel}`)}, import.meta.url).href`;
      });
      return { code: rewritten, map: null };
    },
  };
}

// V8 keeps each loaded module's source text in its heap for the life of the process (lazy
// compilation, Function.prototype.toString), one byte a character when every character is Latin-1,
// two bytes for all of it when even one is not. One `…` in a message made the proxy's 557 KB chunk
// 1.1 MB of heap. Each such character is written as its \u escape instead, which means the same
// in a string, a template, a regular expression or an identifier, and is only text in a comment.
// A String.raw template would see the escape itself: none holds such a character (the build checks).
const WIDE = /[\u0100-\uffff]/;
function latin1Source() {
  return {
    name: 'keyway-latin1-source',
    // After rendering: rolldown prints string literals again after renderChunk, un-escaping them.
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk' || !WIDE.test(chunk.code)) continue;
        // A String.raw template, or a backslash before the character, would not mean the same escaped.
        if (/String\.raw`[^`]*[\u0100-\uffff]|\\[\u0100-\uffff]/.test(chunk.code))
          this.error(`${chunk.fileName}: a non-Latin-1 character the build cannot escape`);
        chunk.code = chunk.code.replace(new RegExp(WIDE.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
      }
    },
  };
}

/** rolldown's input and output options for the project at `root`. */
export function bundleOptions(root) {
  const src = join(root, 'src');
  for (const entry of ENTRIES) if (!existsSync(join(src, `${entry}.ts`))) throw new Error(`bundle entry src/${entry}.ts is missing`);
  return {
    input: {
      input: Object.fromEntries(ENTRIES.map((e) => [e, join(src, `${e}.ts`)])),
      platform: 'node',
      external,
      tsconfig: join(root, 'tsconfig.json'),
      // The version and commit `keyway --version` names (scripts/build-stamp.mjs).
      transform: { define: stampDefine(buildStamp(root)) },
      plugins: [moduleUrls(`${src}/`), latin1Source()],
      // A warning is a question the build does not answer by itself (an unresolved import, an eval).
      onLog(level, log, handler) {
        if (level === 'warn') handler('error', log);
        else handler(level, log);
      },
    },
    output: {
      dir: join(root, 'dist'),
      format: 'es',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      // Errors and classes keep their names (pino's err.type, messages) when two modules share one.
      keepNames: true,
      // Whitespace and comments out, nothing renamed or rewritten: V8 keeps every loaded module's
      // source text in the heap for as long as the process lives (lazy compilation reads it again),
      // and keyway's chunks were 1.3 MB of it after s2. Without whitespace they are 0.93 MB: RSS
      // after s2 109.5 -> 107.7 MiB in bench/memory.ts (issue 64). Names stay (keepNames, no
      // mangling), so a stack trace still names its functions; its columns are in the one-line
      // chunks (KEYWAY_BUNDLE_SOURCEMAP=1 builds the maps that map them back to src/).
      minify: { compress: false, mangle: false, codegen: { removeWhitespace: true } },
      // Off in a normal build. `npm run bench -- --profile` builds with KEYWAY_BUNDLE_SOURCEMAP=1 to map
      // CPU profile samples in the chunks back to src/ files (bench/profile-map.ts): hidden maps (no
      // sourceMappingURL comment, so Node never reads them), without the sources' text.
      sourcemap: process.env.KEYWAY_BUNDLE_SOURCEMAP === '1' ? 'hidden' : false,
      sourcemapExcludeSources: true,
    },
  };
}
