// The single executable (Node's single executable applications): the bundle (sea-bundle.mjs) and
// the files keyway reads at run time, as assets, built into a copy of the pinned Node binary
// (node-binary.mjs). The assets keep the names they have in the package (process/own-program.ts
// reads them by those names): the dashboard's files, the example config, Cedar's WASM.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodePackage } from './node-binary.mjs';
import { CEDAR_WASM_ASSET } from './sea-bundle.mjs';

/** The asset name -> file on disk, for the checkout at `root`. */
export function seaAssets(root) {
  const dashboard = join(root, 'src', 'admin', 'dashboard');
  const assets = {
    'config/keyway.example.yaml': join(root, 'config', 'keyway.example.yaml'),
    [CEDAR_WASM_ASSET]: join(root, 'node_modules', '@cedar-policy', 'cedar-wasm', 'nodejs', CEDAR_WASM_ASSET),
  };
  for (const name of readdirSync(dashboard).sort()) assets[`dashboard/${name}`] = join(dashboard, name);
  return assets;
}

/**
 * Builds `output` for `arch` from the bundle in `bundleDir` (its `files`, sea-bundle.mjs). The
 * building Node is the host's (x64) binary of the same version: Node requires the two alike, and
 * takes the target's binary as `executable`.
 */
export function buildSea({ root, bundleDir, files, output, arch, cacheDir, work }) {
  const builder = join(nodePackage('x64', cacheDir), 'bin', 'node');
  const target = join(nodePackage(arch, cacheDir), 'bin', 'node');
  const config = join(work, `sea-${arch}.json`);
  const assets = seaAssets(root);
  for (const file of files) assets[`bundle/${file}`] = join(bundleDir, file);
  const seaConfig = {
    // By its name in the working folder: Node keeps the path it is given in the executable, and a
    // temporary folder's name would make each build differ.
    main: 'sea-loader.mjs',
    mainFormat: 'module',
    executable: target,
    output,
    disableExperimentalSEAWarning: true,
    // Node's options are given as --node-options=... (start's runtime settings, process/own-program.ts).
    execArgvExtension: 'cli',
    // No V8 code cache: it covers the main script only (a few lines here), and V8 writes it
    // differently at each build. Node's compile cache serves the chunks (sea-loader.mjs).
    useCodeCache: false,
    assets,
  };
  copyFileSync(join(root, 'scripts', 'release', 'sea-loader.mjs'), join(work, 'sea-loader.mjs'));
  writeFileSync(config, `${JSON.stringify(seaConfig, null, 2)}\n`);
  execFileSync(builder, ['--build-sea', config], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
  chmodSync(output, 0o755);
  return output;
}
