// The image's base layer, distroless-style: the files of a few Debian packages, no package manager,
// no shell but busybox's. Fetched with `apt-get download` (Debian's own client; the versions are the
// archive's at build time, written into the image at /var/lib/dpkg/status.d/ where scanners look),
// unpacked with dpkg-deb, then read back with modes normalized so the build machine's umask and
// owners never reach the layer.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What the image needs, each with why. The executable is Node's (a single executable application):
 * glibc, libstdc++, libgcc_s and libatomic, as Node's official Linux builds link them (oci-image.mjs
 * checks the executable's own list against the layer). busybox-static is /bin/sh
 * for the Dockerfile's entry (deploy/docker-entrypoint.sh runs sh, cp, mv) and the rules script
 * (deploy/transparent/apply.sh); nftables and its libraries apply those rules in the init container.
 */
export const DEBIAN_PACKAGES = [
  { name: 'libc6', why: "the executable's C library and loader" },
  { name: 'libgcc-s1', why: "the executable's libgcc_s" },
  { name: 'libstdc++6', why: "the executable's libstdc++" },
  { name: 'libatomic1', why: "the executable's libatomic (Node 26's official builds link it)" },
  { name: 'ca-certificates', why: 'the CA roots, as /etc/ssl/certs/ca-certificates.crt' },
  { name: 'busybox-static', why: '/bin/sh, cp and mv for the entrypoint and the rules script' },
  { name: 'nftables', why: 'nft, which applies deploy/transparent/redirect.nft' },
  { name: 'libnftables1', why: "nft's library" },
  { name: 'libnftnl11', why: "nft's library" },
  { name: 'libmnl0', why: "nft's library" },
  { name: 'libxtables12', why: "nft's library" },
  { name: 'libjansson4', why: "nft's library" },
  { name: 'libgmp10', why: "nft's library" },
  { name: 'libedit2', why: "nft's library" },
  { name: 'libbsd0', why: "libedit's library" },
  { name: 'libmd0', why: "libbsd's library" },
  { name: 'libtinfo6', why: "libedit's library" },
];

/** The busybox applets linked into /bin: what the two scripts call, and a few to look around with. */
export const BUSYBOX_APPLETS = ['sh', 'cp', 'mv', 'rm', 'mkdir', 'cat', 'ls', 'id', 'env', 'dirname', 'echo', 'test', '['];

/** Left out of the layer: documentation but the licenses, manuals, translations, package scripts. */
function unwanted(path) {
  if (path.startsWith('usr/share/doc/')) return !/^usr\/share\/doc\/[^/]+\/copyright$/.test(path) && path.split('/').length > 4;
  return /^usr\/share\/(man|info|locale|lintian|bug|bash-completion|zsh)(\/|$)/.test(path) || path.startsWith('usr/share/ca-certificates/');
}

/** Every file under `root` as tar entries (paths relative to it), modes normalized. */
function readTree(root, prefix = '') {
  const entries = [];
  for (const name of readdirSync(join(root, prefix)).sort()) {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (unwanted(path)) continue;
    const full = join(root, path);
    const stat = lstatSync(full);
    if (stat.isSymbolicLink()) entries.push({ path, type: 'symlink', mode: 0o777, linkname: readlinkSync(full) });
    else if (stat.isDirectory()) {
      entries.push({ path, type: 'dir', mode: 0o755 });
      entries.push(...readTree(root, path));
    } else if (stat.isFile()) {
      // Executable bits kept as one fact (any x: 0755), so the umask cannot change the layer.
      entries.push({ path, type: 'file', mode: stat.mode & 0o111 ? 0o755 : 0o644, data: readFileSync(full) });
    } else throw new Error(`debian-root: not a file, folder or link: ${path}`);
  }
  return entries;
}

/** The CA roots as one bundle, as update-ca-certificates makes it: each certificate, sorted by name. */
function caBundle(root) {
  const dir = join(root, 'usr/share/ca-certificates/mozilla');
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.crt'))
    .sort();
  if (names.length < 50) throw new Error(`debian-root: only ${names.length} CA roots in ca-certificates`);
  return Buffer.concat(names.map((n) => readFileSync(join(dir, n))));
}

/**
 * Downloads (or reuses from `cacheDir`) and unpacks the packages for `arch` (Debian's name: amd64),
 * and returns the layer's entries and each package's name and version.
 */
export function debianRoot({ cacheDir, arch = 'amd64' }) {
  mkdirSync(cacheDir, { recursive: true });
  const debsOf = (pkg) => readdirSync(cacheDir).filter((f) => f.startsWith(`${pkg.name}_`) && (f.endsWith(`_${arch}.deb`) || f.endsWith('_all.deb')));
  const missing = DEBIAN_PACKAGES.filter((p) => debsOf(p).length === 0);
  if (missing.length > 0) {
    const download = () =>
      execFileSync('apt-get', ['download', '-q', ...missing.map((p) => `${p.name}:${arch}`)], { cwd: cacheDir, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      download();
    } catch {
      // A machine whose package lists were never fetched (a fresh CI image) knows no versions yet.
      execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
      download();
    }
  }
  const root = mkdtempSync(join(tmpdir(), 'keyway-debian-root-'));
  const packages = [];
  const status = [];
  try {
    for (const pkg of DEBIAN_PACKAGES) {
      const files = debsOf(pkg);
      if (files.length !== 1)
        throw new Error(`debian-root: expected one ${pkg.name} package in ${cacheDir}, found ${files.length} (empty the folder to fetch again)`);
      const deb = join(cacheDir, files[0]);
      execFileSync('dpkg-deb', ['-x', deb, root]);
      const control = execFileSync('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Source'], { encoding: 'utf8' });
      const fields = Object.fromEntries(
        control
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
      );
      packages.push({ name: fields.Package, version: fields.Version, arch: fields.Architecture, source: fields.Source });
      status.push({
        path: `var/lib/dpkg/status.d/${fields.Package}`,
        type: 'file',
        mode: 0o644,
        data: Buffer.from(`${control.trim()}\nStatus: install ok installed\n`),
      });
    }
    // Made below: the bundle's folder, and /tmp with its sticky bit.
    const entries = readTree(root).filter((e) => e.path !== 'etc/ssl/certs' && e.path !== 'tmp');
    const busybox = BUSYBOX_APPLETS.map((a) => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' }));
    // dev, proc and sys: where a container runtime mounts them (empty in the layer).
    const dirs = ['dev', 'proc', 'sys', 'etc', 'etc/ssl', 'etc/ssl/certs', 'tmp', 'var', 'var/lib', 'var/lib/dpkg', 'var/lib/dpkg/status.d'];
    const present = new Set(entries.map((e) => e.path));
    const extra = [
      ...dirs.filter((d) => !present.has(d)).map((path) => ({ path, type: 'dir', mode: path === 'tmp' ? 0o1777 : 0o755 })),
      { path: 'etc/ssl/certs/ca-certificates.crt', type: 'file', mode: 0o644, data: caBundle(root) },
      ...status,
      ...busybox.filter((b) => !present.has(b.path)),
    ];
    const all = [...entries, ...extra];
    if (!existsSync(join(root, 'bin/busybox'))) throw new Error('debian-root: busybox-static has no bin/busybox');
    return { entries: all, packages };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
