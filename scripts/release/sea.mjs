// The single executable (Node's single executable applications): the bundle (sea-bundle.mjs) and
// the files keyway reads at run time, as assets, built into a copy of the pinned Node binary
// (node-binary.mjs). The assets keep the names they have in the package (process/own-program.ts
// reads them by those names): the dashboard's files, the example config, Cedar's WASM.
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PROXY_NODE_FLAGS } from '../../src/cli/proxy-runtime.ts';
import { nodePackage } from './node-binary.mjs';
import { CEDAR_WASM_ASSET } from './sea-bundle.mjs';

/**
 * The runtime settings of `keyway start` (cli/proxy-runtime.ts) that change the code V8 makes, given
 * to every run of the executable; the heap sizes stay start's own (given by its re-execution).
 * For a short command they cost nothing that shows: JIT tiers a command does not run long enough to reach.
 */
const CODE_FLAGS = PROXY_NODE_FLAGS.filter((flag) => !/^--max-(semi|old)-space-size=/.test(flag));

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
 * Builds `output` for `arch` from the bundle `main`. The building Node is the host's (x64) binary of
 * the same version: Node requires the two alike, and takes the target's binary as `executable`.
 */
export function buildSea({ root, main, output, arch, cacheDir, work }) {
  const builder = join(nodePackage('x64', cacheDir), 'bin', 'node');
  const target = join(nodePackage(arch, cacheDir), 'bin', 'node');
  const config = join(work, `sea-${arch}.json`);
  const seaConfig = {
    // By its name in the working folder: Node keeps the path it is given in the executable, and a
    // temporary folder's name would make each build differ.
    main: basename(main),
    mainFormat: 'module',
    executable: target,
    output,
    disableExperimentalSEAWarning: true,
    // Node's options are given as --node-options=... (start's runtime settings, process/own-program.ts).
    execArgvExtension: 'cli',
    // V8's code cache of the bundle, made by the building Node: start-up without compiling the
    // bundle's 7 MB. It is tied to the V8 build, so only where the building and target binaries are
    // one (x64); arm64 compiles at each start. V8 rejects it (with a warning) when a flag that
    // changes code differs between its making and its use: the flags of `keyway start` that do are
    // therefore every command's, and the cache is made under them (CODE_FLAGS).
    useCodeCache: arch === 'x64',
    execArgv: CODE_FLAGS,
    assets: seaAssets(root),
  };
  writeFileSync(config, `${JSON.stringify(seaConfig, null, 2)}\n`);
  execFileSync(builder, [...CODE_FLAGS, '--build-sea', config], { cwd: dirname(main), stdio: ['ignore', 'ignore', 'inherit'] });
  chmodSync(output, 0o755);
  return output;
}
