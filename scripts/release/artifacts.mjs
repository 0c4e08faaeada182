// The release's other files: the npm tarball, the licenses of what the single
// executable bundles, SHA256SUMS. Each made the same way from the same commit (see main.mjs).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** `npm pack` into `dir` (its prepare script builds dist/); returns the tarball's name. */
export function packTarball(root, dir) {
  // npm writes every entry with one fixed mtime and mode, in its walk's order: the same tree packs alike.
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.slice(out.indexOf('[')))[0].filename;
}

/** The package folder (holding package.json with a name) a bundled module came from, or undefined for keyway's own. */
function packageOf(moduleId) {
  const at = moduleId.lastIndexOf('/node_modules/');
  if (at < 0) return undefined;
  const rest = moduleId.slice(at + '/node_modules/'.length).split('/');
  const depth = rest[0]?.startsWith('@') ? 2 : 1;
  return moduleId.slice(0, at + '/node_modules/'.length) + rest.slice(0, depth).join('/');
}

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\.(md|txt|markdown))?$/i;

/**
 * LICENSES.txt: each package whose code the single executable holds (the bundle's modules), with its
 * declared license and license files' text, sorted by name; and Node.js itself (`nodeFolder`).
 */
export function writeLicenses(moduleIds, nodeFolder, file) {
  const packages = new Map();
  for (const id of moduleIds) {
    const folder = packageOf(id);
    if (folder === undefined || packages.has(folder)) continue;
    const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
    packages.set(folder, pkg);
  }
  const entries = [...packages].map(([folder, pkg]) => ({ folder, name: pkg.name, version: pkg.version, license: pkg.license ?? 'UNKNOWN' }));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
  const node = JSON.parse(readFileSync(join(nodeFolder, 'package.json'), 'utf8'));
  entries.unshift({ folder: nodeFolder, name: 'Node.js', version: node.version, license: 'MIT (and the licenses in its LICENSE)' });
  const parts = [`Licenses of what the keyway single executable holds: Node.js and ${entries.length - 1} npm packages.\n`];
  for (const e of entries) {
    const texts = readdirSync(e.folder)
      .filter((name) => LICENSE_FILE.test(name))
      .sort()
      .map((name) => readFileSync(join(e.folder, name), 'utf8').trim());
    parts.push(`${'='.repeat(78)}\n${e.name} ${e.version}\nLicense: ${e.license}\n\n${texts.join('\n\n') || '(no license file in the package)'}\n`);
  }
  writeFileSync(file, parts.join('\n'));
  return entries.length - 1;
}

/** SHA256SUMS of every file in `dir` but itself, sorted by name (`sha256sum -c SHA256SUMS` checks them). */
export function writeChecksums(dir) {
  const names = readdirSync(dir)
    .filter((name) => name !== 'SHA256SUMS')
    .sort();
  const lines = names.map(
    (name) =>
      `${createHash('sha256')
        .update(readFileSync(join(dir, name)))
        .digest('hex')}  ${name}\n`,
  );
  writeFileSync(join(dir, 'SHA256SUMS'), lines.join(''));
  return names;
}
