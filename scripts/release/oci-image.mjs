// keyway's OCI image, built without a container engine: two layers (Debian's runtime files from
// debian-root.mjs; keyway's single executable, entrypoint and folders), the Dockerfile's entry
// (dockerfile-entry.mjs), as a non-root user. Writes an OCI image layout folder and one tarball that
// is both an OCI archive and a `docker load` archive (manifest.json beside index.json, as
// `docker save` writes since Docker 25). The same inputs give the same bytes: sorted tar entries, one
// mtime (SOURCE_DATE_EPOCH, default the commit's time), fixed owners and modes, gzip without a name
// or time. What can change them: the Debian packages' versions (the archive's at build time) and
// the executable itself.
//   node scripts/release/oci-image.mjs --executable release/keyway-linux-x64 [--out release] [--layout DIR] [--commit HASH]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { debianRoot } from './debian-root.mjs';
import { readDockerfileEntry } from './dockerfile-entry.mjs';
import { elfNeeds } from './elf-needs.mjs';
import { tarArchive } from './tar.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** keyway's uid and gid: the Dockerfile's `node` user, which deploy/ and the chart's rules exempt. */
export const KEYWAY_UID = 1000;
export const EXECUTABLE_PATH = 'usr/local/bin/keyway';

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** Debian's architecture for an ELF executable, or a refusal for anything else. */
export function elfArchitecture(bytes) {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46) throw new Error('oci-image: the executable is not an ELF file');
  const machine = bytes.readUInt16LE(18);
  if (machine === 0x3e) return 'amd64';
  if (machine === 0xb7) return 'arm64';
  throw new Error(`oci-image: ELF machine 0x${machine.toString(16)} is neither x86-64 nor aarch64`);
}

const MULTIARCH = { amd64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/** Refuses an executable whose loader or a library it names is not in the base layer. */
export function checkLibraries(executable, arch, baseEntries) {
  const paths = new Set(baseEntries.map((e) => e.path));
  const { interpreter, needed } = elfNeeds(executable);
  const missing = needed.filter((lib) => ![`lib/${MULTIARCH[arch]}/${lib}`, `usr/lib/${MULTIARCH[arch]}/${lib}`].some((p) => paths.has(p)));
  if (interpreter !== undefined && !paths.has(interpreter.slice(1))) missing.unshift(interpreter);
  if (missing.length > 0) throw new Error(`oci-image: the executable needs ${missing.join(', ')}, not in the image: add its Debian package to debian-root.mjs`);
}

/** The layer with keyway's own files; files root's (read-only to keyway), the state folders its. */
export function keywayLayer(executable) {
  const own = { uid: KEYWAY_UID, gid: KEYWAY_UID };
  const file = (path, from, mode = 0o644) => ({ path, type: 'file', mode, data: readFileSync(join(REPO, from)) });
  const text = (path, data) => ({ path, type: 'file', mode: 0o644, data: Buffer.from(data) });
  const dir = (path, extra = {}) => ({ path, type: 'dir', mode: 0o755, ...extra });
  return [
    dir('etc'),
    // No login shell and no password for either: the image is run, never logged into.
    text('etc/passwd', `root:x:0:0:root:/root:/sbin/nologin\nkeyway:x:${KEYWAY_UID}:${KEYWAY_UID}:keyway:/app:/sbin/nologin\n`),
    text('etc/group', `root:x:0:\nkeyway:x:${KEYWAY_UID}:\n`),
    dir('usr'),
    dir('usr/local'),
    dir('usr/local/bin'),
    { path: EXECUTABLE_PATH, type: 'file', mode: 0o755, data: executable },
    dir('app', own),
    // Owned by keyway so the volumes mounted there start out writable, as in the Dockerfile.
    ...['certs', 'data', 'logs', 'ca-public'].map((d) => dir(`app/${d}`, own)),
    // keyway's: a first `keyway init` with no config mounted writes config/keyway.yaml here.
    dir('app/config', own),
    file('app/config/keyway.example.yaml', 'config/keyway.example.yaml'),
    file('app/docker-entrypoint.sh', 'deploy/docker-entrypoint.sh', 0o755),
    dir('app/deploy'),
    dir('app/deploy/transparent'),
    file('app/deploy/transparent/apply.sh', 'deploy/transparent/apply.sh', 0o755),
    file('app/deploy/transparent/redirect.nft', 'deploy/transparent/redirect.nft'),
  ];
}

/** The image config: the Dockerfile's entry, the executable on PATH, the layers' digests. */
export function imageConfig({ arch, diffIds, version, commit, created, packages }) {
  const entry = readDockerfileEntry(join(REPO, 'Dockerfile'));
  if (entry.user !== 'node') throw new Error(`oci-image: the Dockerfile runs as ${entry.user}, not node (uid ${KEYWAY_UID}): update oci-image.mjs`);
  return {
    created,
    architecture: arch,
    os: 'linux',
    config: {
      // Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
      User: `${KEYWAY_UID}:${KEYWAY_UID}`,
      // KEYWAY_BIN: the entrypoint runs the single executable instead of `node dist/cli/main.js`.
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', ...Object.entries(entry.env).map(([k, v]) => `${k}=${v}`), `KEYWAY_BIN=/${EXECUTABLE_PATH}`],
      Entrypoint: entry.entrypoint,
      Cmd: entry.cmd,
      WorkingDir: entry.workdir,
      ExposedPorts: Object.fromEntries(entry.exposed.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])),
      Volumes: Object.fromEntries(entry.volumes.map((v) => [v, {}])),
      Labels: {
        'org.opencontainers.image.title': 'keyway',
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.revision': commit,
        'org.opencontainers.image.licenses': 'MIT',
        'org.opencontainers.image.created': created,
      },
    },
    rootfs: { type: 'layers', diff_ids: diffIds.map((d) => `sha256:${d}`) },
    history: [
      { created, created_by: `debian packages: ${packages.map((p) => `${p.name}=${p.version}`).join(' ')}` },
      { created, created_by: 'keyway: single executable, entrypoint, config example, rules, /etc/passwd' },
    ],
  };
}

/**
 * Builds the image from the executable's bytes. Returns the blobs (digest → bytes), the index and
 * manifest, and Docker's manifest.json; writes nothing.
 */
export function buildImage({ executable, version, commit, epoch, debCache }) {
  const arch = elfArchitecture(executable);
  const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  const base = debianRoot({ cacheDir: debCache, arch });
  checkLibraries(executable, arch, base.entries);
  const layers = [tarArchive(base.entries, epoch), tarArchive(keywayLayer(executable), epoch)];
  const blobs = new Map();
  const put = (data) => {
    const digest = sha256(data);
    blobs.set(digest, data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  // gzip's header has no name and a zero time in Node's zlib, and the level is fixed: the same bytes
  // for one zlib. Level 6: 9 took four times as long on the 160 MB executable for 0.4% less.
  const layerDescs = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(gzipSync(l, { level: 6 })) }));
  const config = imageConfig({ arch, diffIds: layers.map(sha256), version, commit, created, packages: base.packages });
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(Buffer.from(JSON.stringify(config))) };
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: layerDescs };
  const manifestDesc = { mediaType: manifest.mediaType, ...put(Buffer.from(JSON.stringify(manifest))) };
  const name = `keyway-proxy:${version}`;
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        ...manifestDesc,
        platform: { architecture: arch, os: 'linux' },
        annotations: { 'io.containerd.image.name': `docker.io/library/${name}`, 'org.opencontainers.image.ref.name': version },
      },
    ],
  };
  const blobPath = (d) => `blobs/sha256/${d.digest.slice('sha256:'.length)}`;
  const dockerManifest = [{ Config: blobPath(configDesc), RepoTags: [name], Layers: layerDescs.map(blobPath) }];
  return { blobs, index, dockerManifest, name, packages: base.packages, config };
}

/** The files of the OCI image layout (and Docker's manifest.json), as tar entries. */
export function layoutEntries(image) {
  const json = (path, value) => ({ path, type: 'file', mode: 0o644, data: Buffer.from(`${JSON.stringify(value)}\n`) });
  return [
    json('oci-layout', { imageLayoutVersion: '1.0.0' }),
    json('index.json', image.index),
    json('manifest.json', image.dockerManifest),
    { path: 'blobs', type: 'dir', mode: 0o755 },
    { path: 'blobs/sha256', type: 'dir', mode: 0o755 },
    ...[...image.blobs].map(([digest, data]) => ({ path: `blobs/sha256/${digest}`, type: 'file', mode: 0o644, data })),
  ];
}

/** Writes the tarball, and the layout as a folder too when `layoutDir` is given. */
export function writeImage(image, { layoutDir, tarPath, epoch }) {
  const entries = layoutEntries(image);
  if (layoutDir !== undefined) {
    rmSync(layoutDir, { recursive: true, force: true });
    for (const e of entries) {
      const path = join(layoutDir, e.path);
      if (e.type === 'dir') mkdirSync(path, { recursive: true });
      else {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, e.data);
      }
    }
  }
  mkdirSync(dirname(tarPath), { recursive: true });
  writeFileSync(tarPath, tarArchive(entries, epoch));
}

function git(args) {
  return execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim();
}

/**
 * The release's image: `out`/keyway-image.tar from `executable`, for `npm run release`
 * (scripts/release/main.mjs) or the command line. `commit` defaults to HEAD; `epoch` to the commit's time.
 */
export function writeReleaseImage({ executable, out, epoch, commit, layoutDir, debCache = join(REPO, 'node_modules/.cache/keyway-release/debs') }) {
  const time = epoch ?? Number(process.env.SOURCE_DATE_EPOCH ?? git(['log', '-1', '--format=%ct']));
  if (!Number.isSafeInteger(time) || time < 0) throw new Error(`oci-image: SOURCE_DATE_EPOCH is not a time in seconds: ${process.env.SOURCE_DATE_EPOCH}`);
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const image = buildImage({ executable: readFileSync(executable), version, commit: commit ?? git(['rev-parse', 'HEAD']), epoch: time, debCache });
  const tarPath = join(out, 'keyway-image.tar');
  writeImage(image, { layoutDir, tarPath, epoch: time });
  return { name: image.name, tarPath };
}

function main() {
  const { values } = parseArgs({
    options: {
      executable: { type: 'string' },
      out: { type: 'string', default: join(REPO, 'release') },
      layout: { type: 'string' },
      debs: { type: 'string' },
      commit: { type: 'string' },
    },
  });
  if (values.executable === undefined) throw new Error('usage: oci-image.mjs --executable PATH [--out DIR] [--layout DIR] [--debs DIR] [--commit HASH]');
  const { name, tarPath } = writeReleaseImage({
    executable: values.executable,
    out: values.out,
    layoutDir: values.layout,
    commit: values.commit,
    ...(values.debs === undefined ? {} : { debCache: values.debs }),
  });
  console.log(`${name}: ${tarPath} (docker load, oci-archive)${values.layout === undefined ? '' : `, ${values.layout} (OCI layout)`}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
