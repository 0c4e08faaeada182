// The daemonless image (scripts/release/oci-image.mjs) built, checked by OCI tools from Debian
// (skopeo reads the layout and both archive forms, umoci unpacks it), and its root run: the image's
// entrypoint and command as its user, in a chroot with no network, prints the executable's version;
// its rules container applies deploy/transparent's rules with the image's nft. Built twice, under
// two umasks, to the same bytes.
// The executable is KEYWAY_RELEASE_EXECUTABLE when set, else release/keyway-linux-x64 when
// `npm run release` made it (whose --version names the commit, and which then also starts keyway
// through the entrypoint: CA published, /readyz, SIGTERM); else a stand-in, the Node binary running
// this test: an ELF that needs the same C and C++ libraries, whose --version is Node's.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ImageConfig } from '../../scripts/release/oci-image.mjs';
import { REPO } from '../helpers/deploy-files.ts';

const RELEASED = join(REPO, 'release', `keyway-linux-${process.arch}`);
const EXECUTABLE = process.env['KEYWAY_RELEASE_EXECUTABLE'] ?? (existsSync(RELEASED) ? RELEASED : process.execPath);
const STAND_IN = EXECUTABLE === process.execPath;
const EPOCH = '1700000000';
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

function build(out: string, umask: string): void {
  const script = join(REPO, 'scripts/release/oci-image.mjs');
  // The commit given: a commit made between the two builds must not look like a difference.
  const args = ['--executable', EXECUTABLE, '--out', out, '--layout', join(out, 'keyway-image-oci'), '--commit', 'c0ffee0c0ffee0c0ffee'];
  execFileSync('sh', ['-c', `umask ${umask} && exec "$@"`, 'sh', process.execPath, script, ...args], {
    cwd: REPO,
    env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

const run = (command: string, args: string[]) => execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('the OCI image', () => {
  const work = mkdtempSync(join(tmpdir(), 'keyway-image-'));
  const [one, two] = [join(work, 'one'), join(work, 'two')];
  let config: ImageConfig;
  let rootfs: string;

  beforeAll(() => {
    build(one, '022');
    build(two, '077');
    config = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${join(one, 'keyway-image-oci')}:${VERSION}`])) as ImageConfig;
    run('umoci', ['unpack', '--image', `${join(one, 'keyway-image-oci')}:${VERSION}`, join(work, 'bundle')]);
    rootfs = join(work, 'bundle/rootfs');
    // Two builds of a 160 MB executable, each compressed, then read back by skopeo and umoci: minutes
    // on 2 loaded cores. The bound catches a hang, it times nothing.
  }, 900_000);

  it('is the same bytes from the same inputs, whatever the umask', () => {
    expect(readFileSync(join(one, 'keyway-image.tar')).equals(readFileSync(join(two, 'keyway-image.tar')))).toBe(true);
  });

  it("has the Dockerfile's entry, a non-root user and the layers skopeo can copy from every form", () => {
    expect(config.config.User).toBe('1000:1000');
    expect(config.config.Entrypoint).toEqual(['/bin/sh', '/app/docker-entrypoint.sh']);
    expect(config.created).toBe(new Date(Number(EPOCH) * 1000).toISOString().replace('.000Z', 'Z'));
    // Each copy re-reads every blob against its digest: a wrong size or digest fails it.
    run('skopeo', ['copy', `docker-archive:${join(one, 'keyway-image.tar')}`, `oci:${join(work, 'from-docker')}:x`]);
    run('skopeo', ['copy', `oci-archive:${join(one, 'keyway-image.tar')}`, `dir:${join(work, 'from-oci-archive')}`]);
    const docker = JSON.parse(run('skopeo', ['inspect', '--config', `docker-archive:${join(one, 'keyway-image.tar')}`])) as ImageConfig;
    expect(docker.rootfs.diff_ids).toEqual(config.rootfs.diff_ids);
  });

  it("starts: the entrypoint, as the image's user with its environment, runs the executable", () => {
    const env = ['env', '-i', ...config.config.Env];
    const entry = [...config.config.Entrypoint, '--version'].map((a) => `'${a}'`).join(' ');
    const out = run('unshare', [
      '--mount',
      '--pid',
      '--fork',
      '--net',
      'chroot',
      '--userspec=1000:1000',
      rootfs,
      ...env,
      '/bin/sh',
      '-c',
      `cd ${config.config.WorkingDir} && id -u && exec ${entry}`,
    ]);
    const [uid, version] = out.trim().split('\n');
    expect(uid).toBe('1000');
    if (STAND_IN) expect(version).toBe(process.version);
    // `VERSION (commit HASH)` (PRODUCT.md: `VERSION (COMMIT)`), -dirty when built from a changed tree.
    else expect(version).toMatch(new RegExp(`^${VERSION.replaceAll('.', '\\.')} \\((commit )?[0-9a-f]{7,40}(-dirty)?\\)$`));
  });

  it("applies the sidecar's rules with the image's own nft, as the rules container does", () => {
    const out = run('unshare', [
      '--mount',
      '--pid',
      '--fork',
      '--net',
      'chroot',
      rootfs,
      'env',
      '-i',
      ...config.config.Env,
      'KEYWAY_UID=1000',
      '/bin/sh',
      '-c',
      '/bin/sh /app/deploy/transparent/apply.sh && nft list ruleset',
    ]);
    expect(out).toContain('meta skuid 1000 return');
    expect(out).toMatch(/tcp dport 443 redirect to :8443/);
  });

  // What a container runtime gives every container: /dev and /proc mounted, a loopback. Then the
  // image's entry and the Dockerfile's command (listening on the namespace's loopback) as uid 1000.
  const START = `set -u
ip link set lo up
mount --bind /dev "$0/dev"
mount -t proc proc "$0/proc"
chroot --userspec=1000:1000 "$0" env -i "$@" /bin/sh -c 'cd /app && exec /bin/sh /app/docker-entrypoint.sh start --listen 127.0.0.1:8787 --admin-listen 127.0.0.1:8788' >/dev/null 2>&1 &
pid=$!
until curl -fs http://127.0.0.1:8788/readyz; do kill -0 $pid 2>/dev/null || exit 3; sleep 0.2; done
kill -TERM $pid
wait $pid`;

  it.skipIf(STAND_IN)("starts keyway with the Dockerfile's command: ready, the CA published for agents, a clean stop on SIGTERM", () => {
    const out = run('unshare', ['--net', '--mount', '--pid', '--fork', 'sh', '-c', START, rootfs, ...config.config.Env]);
    expect(JSON.parse(out)).toMatchObject({ ready: true });
    expect(readdirSync(join(rootfs, 'app/ca-public')).sort()).toEqual(['bundle.pem', 'ca.pem']);
    expect(readFileSync(join(rootfs, 'app/ca-public/ca.pem'), 'utf8')).toBe(readFileSync(join(rootfs, 'app/certs/ca.pem'), 'utf8'));
  });

  it("trusts Debian's CA roots, and keyway alone may write its state folders", () => {
    expect(readFileSync(join(rootfs, 'etc/ssl/certs/ca-certificates.crt'), 'utf8').split('BEGIN CERTIFICATE').length).toBeGreaterThan(100);
    const as1000 = (script: string) =>
      execFileSync('unshare', ['--mount', '--pid', '--fork', '--net', 'chroot', '--userspec=1000:1000', rootfs, '/bin/sh', '-c', script], { stdio: 'ignore' });
    expect(() => as1000(': > /app/data/probe && : > /app/certs/probe')).not.toThrow();
    expect(() => as1000(': > /app/docker-entrypoint.sh')).toThrow();
    expect(() => as1000(': > /usr/local/bin/keyway')).toThrow();
  });
});
