// `npm run release`: release/ for the current commit, published nowhere.
//   keyway-proxy-<version>.tgz   the npm package (`npm install -g` it)
//   keyway-linux-x64, -arm64     the single executable (Node inside; no Node needed to run it)
//   sbom.cdx.json                CycloneDX SBOM of the runtime dependencies
//   LICENSES.txt                 the licenses of what the single executable holds
//   keyway-image.tar             the OCI image (linux/amd64) of the x64 executable; docker load takes it
//   keyway-chart-<version>.tgz   the Helm chart, packaged
//   SHA256SUMS                   of all the above (written last)
// The same commit gives byte-identical files (SOURCE_DATE_EPOCH is the commit's time, where a file
// holds a time at all); docs/install.md says which were checked and which tools do not allow it.
//
//   node scripts/release/main.mjs [--only=linux-x64]   (--only: the one executable, nothing else; what CI's test builds)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStamp, commitEpoch } from '../build-stamp.mjs';
import { packTarball, writeChecksums, writeLicenses } from './artifacts.mjs';
import { nodePackage } from './node-binary.mjs';
import { writeChartPackage } from './chart-package.mjs';
import { writeReleaseImage } from './oci-image.mjs';
import { writeSbom } from './sbom.mjs';
import { buildSea } from './sea.mjs';
import { bundleSingleExecutable } from './sea-bundle.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const ARCHES = ['x64', 'arm64'];
const arches = only === undefined ? ARCHES : ARCHES.filter((arch) => `linux-${arch}` === only);
if (only !== undefined && arches.length === 0) throw new Error(`--only takes ${ARCHES.map((a) => `linux-${a}`).join(' or ')}, not ${only}`);

const out = join(root, 'release');
const cacheDir = join(root, 'node_modules', '.cache', 'keyway-release');
const work = mkdtempSync(join(tmpdir(), 'keyway-release-'));
const stamp = buildStamp(root);
const epoch = commitEpoch(root) ?? 0;
const say = (line) => process.stderr.write(`release: ${line}\n`);
say(`keyway ${stamp.version} (commit ${stamp.commit})${stamp.commit.endsWith('-dirty') ? ": the tree has changes, so these files are not the commit's" : ''}`);
try {
  // --only replaces one file of an earlier release: its SHA256SUMS no longer describes the folder.
  if (only === undefined) rmSync(out, { recursive: true, force: true });
  else rmSync(join(out, 'SHA256SUMS'), { force: true });
  mkdirSync(out, { recursive: true });
  const bundleDir = join(work, 'bundle');
  const { files, moduleIds } = await bundleSingleExecutable(root, bundleDir);
  for (const arch of arches) {
    buildSea({ root, bundleDir, files, output: join(out, `keyway-linux-${arch}`), arch, cacheDir, work });
    say(`keyway-linux-${arch}`);
  }
  if (only === undefined) {
    say(packTarball(root, out));
    say(`sbom.cdx.json (${writeSbom(root, join(out, 'sbom.cdx.json'), epoch)} packages)`);
    say(`LICENSES.txt (${writeLicenses(moduleIds, nodePackage('x64', cacheDir), join(out, 'LICENSES.txt'))} packages and Node.js)`);
    // The image holds the x64 executable just built (the image is linux/amd64 only; docs/install.md).
    say(`${writeReleaseImage({ executable: join(out, 'keyway-linux-x64'), out, epoch, commit: stamp.commit }).tarPath.slice(out.length + 1)}`);
    say(`${writeChartPackage({ out, epoch }).slice(out.length + 1)}`);
    say(`SHA256SUMS (${writeChecksums(out).length} files)`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
