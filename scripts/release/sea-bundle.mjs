// The single executable's bundle: all of keyway and every npm package it uses, bundled by rolldown
// into ES module chunks (the executable has no node_modules and no dist/: sea-loader.mjs loads the
// chunks from its assets). Unlike dist/ (scripts/bundle.mjs), nothing is external but Node's own
// modules; a lazy import() stays a chunk of its own, loaded when reached, as in dist/. What the package reads from beside its files is
// rewritten here, each for a reason:
// - import.meta.url in keyway's modules: a path under a folder that does not exist, so a lookup the
//   single executable was not taught (process/own-program.ts) fails loudly instead of finding a
//   stray dist/ on the machine;
// - createRequire(import.meta.url)('pkg'): a plain require the bundler follows (undici's, tldts's and
//   node-forge's own files);
// - Cedar's WASM, read by its glue from beside itself: the executable's asset of the same name.
// The version and commit are stamped as for dist/ (scripts/build-stamp.mjs).
import { join, relative } from 'node:path';
import { rolldown } from 'rolldown';
import { buildStamp, stampDefine } from '../build-stamp.mjs';

export const CEDAR_WASM_ASSET = 'cedar_wasm_bg.wasm';
const NOWHERE = 'file:///keyway-single-executable/dist/';

function seaRewrites(src) {
  return {
    name: 'keyway-sea-rewrites',
    transform(code, id) {
      if (id.includes('@cedar-policy/cedar-wasm/nodejs/cedar_wasm.js')) {
        // Its two lines, written without a template so that no placeholder is read here.
        const read = ['const wasmPath = `$', '{__dirname}/cedar_wasm_bg.wasm`;\n', "const wasmBytes = require('fs').readFileSync(wasmPath);"].join('');
        if (!code.includes(read)) this.error('cedar-wasm no longer reads its WASM as scripts/release/sea-bundle.mjs expects');
        return { code: code.replace(read, `const wasmBytes = require('node:sea').getRawAsset(${JSON.stringify(CEDAR_WASM_ASSET)});`), map: null };
      }
      if (!id.startsWith(src) || !code.includes('import.meta')) return null;
      const own = relative(src, id).split('\\').join('/').replace(/\.ts$/, '.js');
      const out = code
        .replace(/const require = createRequire\(import\.meta\.url\);/g, '')
        .replace(/createRequire\(import\.meta\.url\)\(/g, 'require(')
        .replaceAll('import.meta.url', JSON.stringify(NOWHERE + own));
      return { code: out, map: null };
    },
  };
}

/**
 * Writes the bundle into `outDir` (the entry cli/single-executable-main.js and chunks/, loaded by
 * sea-loader.mjs); returns the files it wrote and the modules they hold (for LICENSES.txt).
 */
export async function bundleSingleExecutable(root, outDir) {
  const src = join(root, 'src');
  const bundle = await rolldown({
    input: { 'cli/single-executable-main': join(src, 'cli', 'single-executable-main.ts') },
    platform: 'node',
    external: (id) => id.startsWith('node:'),
    tsconfig: join(root, 'tsconfig.json'),
    transform: { define: stampDefine(buildStamp(root)) },
    plugins: [seaRewrites(`${src}/`)],
  });
  try {
    const { output } = await bundle.write({
      dir: outDir,
      format: 'es',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      keepNames: true,
      // As dist/ (scripts/bundle.mjs): whitespace out, names kept.
      minify: { compress: false, mangle: false, codegen: { removeWhitespace: true } },
      sourcemap: false,
    });
    const chunks = output.filter((chunk) => chunk.type === 'chunk');
    return { files: chunks.map((chunk) => chunk.fileName).sort(), moduleIds: chunks.flatMap((chunk) => chunk.moduleIds) };
  } finally {
    await bundle.close();
  }
}
