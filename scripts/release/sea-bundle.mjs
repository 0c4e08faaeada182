// The single executable's one script: all of keyway and every npm package it uses bundled by rolldown
// into one ES module (Node's single executable runs one embedded script: no node_modules, no dist/).
// Unlike dist/ (scripts/bundle.mjs), nothing is external but Node's own modules, and lazy imports are
// inlined (they still run only when reached). What the package reads from beside its files is
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
        const read = "const wasmPath = `${__dirname}/cedar_wasm_bg.wasm`;\nconst wasmBytes = require('fs').readFileSync(wasmPath);";
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

/** Writes the bundle to `outFile`; returns the files it holds (for the licenses of what is bundled). */
export async function bundleSingleExecutable(root, outFile) {
  const src = join(root, 'src');
  const bundle = await rolldown({
    input: join(src, 'cli', 'single-executable-main.ts'),
    platform: 'node',
    external: (id) => id.startsWith('node:'),
    tsconfig: join(root, 'tsconfig.json'),
    transform: { define: stampDefine(buildStamp(root)) },
    plugins: [seaRewrites(`${src}/`)],
  });
  try {
    const { output } = await bundle.write({ file: outFile, format: 'es', codeSplitting: false, keepNames: true, sourcemap: false });
    return output.flatMap((chunk) => (chunk.type === 'chunk' ? chunk.moduleIds : []));
  } finally {
    await bundle.close();
  }
}
