// sbom.cdx.json: a CycloneDX 1.5 SBOM of keyway's runtime dependencies, read from package-lock.json:
// every package reached from package.json's dependencies through dependencies, optional and peer
// dependencies, each at the version the lockfile resolves, with its license and the registry's
// sha512 of its tarball. Made here rather than by `npm sbom --omit=dev`, which on this lockfile
// leaves out most of them (zod, jose, yaml, every @smithy/* package: npm 11.19, --package-lock-only
// and with node_modules alike). Nothing in it depends on the time or the machine but the commit's
// time (metadata.timestamp), so the same commit gives the same file.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The lockfile path `name` resolves to from the package at `from` (node_modules lookup, nearest first). */
function resolveIn(packages, from, name) {
  for (let at = from; ; ) {
    const candidate = `${at === '' ? '' : `${at}/`}node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (at === '') return undefined;
    const cut = at.lastIndexOf('/node_modules/');
    at = cut < 0 ? '' : at.slice(0, cut);
  }
}

const purlOf = (name, version) => `pkg:npm/${name.startsWith('@') ? `%40${name.slice(1)}` : name}@${version}`;
const nameOf = (path) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);

/** The SBOM for the checkout at `root`, timestamped `epochSeconds`. */
export function runtimeSbom(root, epochSeconds) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const { packages } = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const reached = new Map(); // lockfile path -> its dependencies' lockfile paths
  const queue = [''];
  while (queue.length > 0) {
    const path = queue.shift();
    if (reached.has(path)) continue;
    const entry = path === '' ? { dependencies: pkg.dependencies } : packages[path];
    const names = Object.keys({ ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies }).sort();
    const deps = [];
    for (const name of names) {
      const found = resolveIn(packages, path, name);
      if (found === undefined) continue; // an optional or peer dependency not installed
      deps.push(found);
      queue.push(found);
    }
    reached.set(path, deps);
  }
  const ref = (path) => (path === '' ? purlOf(pkg.name, pkg.version) : purlOf(nameOf(path), packages[path].version));
  const paths = [...reached.keys()].filter((p) => p !== '').sort((a, b) => (ref(a) < ref(b) ? -1 : ref(a) > ref(b) ? 1 : 0));
  const components = [];
  const seen = new Set();
  for (const path of paths) {
    const entry = packages[path];
    if (seen.has(ref(path))) continue; // the same version installed at two places
    seen.add(ref(path));
    const component = { type: 'library', 'bom-ref': ref(path), name: nameOf(path), version: entry.version, purl: ref(path) };
    if (typeof entry.license === 'string') component.licenses = [{ expression: entry.license }];
    if (typeof entry.integrity === 'string' && entry.integrity.startsWith('sha512-')) {
      component.hashes = [{ alg: 'SHA-512', content: Buffer.from(entry.integrity.slice(7), 'base64').toString('hex') }];
    }
    components.push(component);
  }
  const dependencies = [...reached]
    .map(([path, deps]) => ({ ref: ref(path), dependsOn: [...new Set(deps.map(ref))].sort() }))
    .filter((d, i, all) => all.findIndex((o) => o.ref === d.ref) === i)
    .sort((a, b) => (a.ref < b.ref ? -1 : 1));
  const sbom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      timestamp: new Date(epochSeconds * 1000).toISOString(),
      tools: { components: [{ type: 'application', name: 'keyway scripts/release/sbom.mjs' }] },
      component: { type: 'application', 'bom-ref': ref(''), name: pkg.name, version: pkg.version, purl: ref(''), licenses: [{ expression: pkg.license }] },
    },
    components,
    dependencies,
  };
  // A serial number the content determines: the same SBOM, the same number.
  const digest = createHash('sha256').update(JSON.stringify(sbom)).digest('hex');
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.5.schema.json',
    bomFormat: sbom.bomFormat,
    specVersion: sbom.specVersion,
    serialNumber: `urn:uuid:${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}`,
    ...sbom,
  };
}

export function writeSbom(root, file, epochSeconds) {
  const sbom = runtimeSbom(root, epochSeconds);
  writeFileSync(file, `${JSON.stringify(sbom, null, 2)}\n`);
  return sbom.components.length;
}
