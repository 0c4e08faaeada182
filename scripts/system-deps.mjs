// The system programs the test suite drives as real clients and peers, checked before `npm test`
// (pretest) and so also in CI (.ci/run runs `npm test`): one list, so the two cannot drift. As root
// on Debian it installs what is missing, starting no service; anyone else gets one line naming the
// `apt-get install` to run, and the tests do not start (they would fail one by one, less clearly).
// Plain JavaScript that runs on any Node: it may run before the pinned Node 24 is in place.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * What the tests need, each a check and the Debian packages that satisfy it. `why` is for the
 * reader of this file; the check's name is what a person sees.
 */
export const REQUIREMENTS = [
  { name: 'curl', packages: ['curl'], why: 'the client most tests drive' },
  { name: 'git', packages: ['git'], why: 'git through the proxy, git http-backend' },
  { name: 'openssl', packages: ['openssl'], why: 'certificates and keys in tests' },
  { name: 'prlimit and unshare', packages: ['util-linux'], why: 'audit-faults: RLIMIT_FSIZE; audit-retention-disk: a tmpfs in a mount namespace' },
  { name: 'chromium', packages: ['chromium'], why: "the dashboard's browser tests (playwright-core drives it)" },
  { name: 'Python requests', packages: ['python3-requests'], why: 'a real Python client' },
  { name: 'PostgreSQL (initdb)', packages: ['postgresql'], why: 'store.backend postgres: each test makes its own throwaway cluster' },
  {
    name: 'squid with ssl-bump',
    packages: ['squid-openssl'],
    why: "the bench's same-run peer (bench-peers.test.ts), and the company proxy of the egress.proxy tests",
  },
  { name: 'Python httpx with h2', packages: ['python3-httpx', 'python3-h2'], why: 'a real HTTP/2 client (run with /usr/bin/python3)' },
  { name: 'aws CLI', packages: ['awscli'], why: 'a real S3 client for SigV4 signing (run as /usr/bin/aws, not a newer one first on PATH)' },
  { name: 'Python boto3', packages: ['python3-boto3'], why: 'a real S3 client for SigV4 signing (run with /usr/bin/python3)' },
  { name: 'nft and ip', packages: ['nftables', 'iproute2'], why: "the sidecar's redirect rules (deploy/transparent), tested in a network namespace" },
  { name: 'systemd-analyze', packages: ['systemd'], why: 'keyway service install: its unit is checked with systemd-analyze verify (systemd need not run)' },
  { name: 'bwrap', packages: ['bubblewrap'], why: "keyway run --contain: the command's PID namespace and its view of the host's files" },
  {
    name: 'Secret Service',
    packages: ['gnome-keyring', 'libsecret-tools', 'dbus'],
    why: 'secret_sources keychain: a real keyring (gnome-keyring in a D-Bus session the test starts), read with secret-tool',
  },
  { name: 'Go', packages: ['golang-go'], why: 'keyway run --contain: a Go client, with its own resolver and TLS stack, that ignores proxies' },
  {
    name: 'qemu-user and arm64 libraries',
    packages: ['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross', 'libatomic1-arm64-cross'],
    why: "the release's linux-arm64 single executable, started once (--version) on an x64 machine by .ci/run",
  },
  {
    name: 'Python requests-oauthlib',
    packages: ['python3-requests-oauthlib'],
    why: 'login capture: a Python OAuth client keyway did not write (run with /usr/bin/python3)',
  },
  {
    name: 'skopeo and umoci',
    packages: ['skopeo', 'umoci'],
    why: "the release's OCI image (scripts/release/oci-image.mjs): its layout and archives read and copied, unpacked and run",
  },
];

/**
 * The decision, with no I/O: which requirements are missing (`present` says per name), and what to
 * do about it. `who.root` and `who.apt` say whether this process may install with apt-get.
 * Returns `none` (all there), `install` (the packages to install) or `tell` (the one line to print).
 */
export function planSystemDeps(present, who) {
  const missing = REQUIREMENTS.filter((r) => present[r.name] !== true);
  if (missing.length === 0) return { action: 'none', missing: [], packages: [] };
  const packages = missing.flatMap((r) => r.packages);
  if (who.root && who.apt) return { action: 'install', missing: missing.map((r) => r.name), packages };
  const command = `${who.root ? '' : 'sudo '}apt-get install -y ${packages.join(' ')}`;
  const names = missing.map((r) => r.name).join(', ');
  const line = who.apt
    ? `npm test needs ${names}, not installed here: run \`${command}\` (or run npm test as root, which installs them)`
    : `npm test needs ${names}, not installed here; on Debian or Ubuntu: \`${command}\`, elsewhere the same from your package manager`;
  return { action: 'tell', missing: missing.map((r) => r.name), packages, line };
}

// ---- the probes: what is on this machine ----

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function runs(command, args) {
  try {
    return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function initdbInstalled() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return false;
  return readdirSync(base).some((version) => executable(`${base}/${version}/bin/initdb`));
}

/** Each requirement's check on this machine, by name. */
export function probeSystem() {
  return {
    curl: onPath('curl'),
    git: onPath('git'),
    openssl: onPath('openssl'),
    'prlimit and unshare': onPath('prlimit') && onPath('unshare'),
    chromium: onPath('chromium') || existsSync(process.env.KEYWAY_TEST_CHROMIUM ?? '/usr/bin/chromium'),
    'Python requests': runs('python3', ['-c', 'import requests']) || runs('/usr/bin/python3', ['-c', 'import requests']),
    'PostgreSQL (initdb)': initdbInstalled(),
    'squid with ssl-bump': executable('/usr/sbin/squid') && executable('/usr/lib/squid/security_file_certgen'),
    'Python httpx with h2': runs('/usr/bin/python3', ['-c', 'import httpx, h2']),
    'aws CLI': executable('/usr/bin/aws'),
    'Python boto3': runs('/usr/bin/python3', ['-c', 'import boto3']),
    'nft and ip': executable('/usr/sbin/nft') && executable('/usr/sbin/ip'),
    bwrap: executable('/usr/bin/bwrap'),
    'qemu-user and arm64 libraries': executable('/usr/bin/qemu-aarch64-static') && existsSync('/usr/aarch64-linux-gnu/lib/libatomic.so.1'),
    'systemd-analyze': executable('/usr/bin/systemd-analyze'),
    'Secret Service': executable('/usr/bin/secret-tool') && executable('/usr/bin/gnome-keyring-daemon') && executable('/usr/bin/dbus-run-session'),
    Go: onPath('go'),
    'Python requests-oauthlib': runs('/usr/bin/python3', ['-c', 'import requests_oauthlib']),
    'skopeo and umoci': executable('/usr/bin/skopeo') && executable('/usr/bin/umoci'),
  };
}

// ---- the install, as root on Debian ----

const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const NO_MAIN_CLUSTER = '/etc/postgresql-common/createcluster.d/keyway-no-main-cluster.conf';

/**
 * apt-get install with no service started: invoke-rc.d asks policy-rc.d, and 101 means "not now"
 * (squid would otherwise listen on 3128). PostgreSQL's package must not create and start a main
 * cluster: the tests initdb their own, on free ports.
 */
function install(packages) {
  console.log(`installing: ${packages.join(' ')}`);
  if (packages.includes('postgresql')) {
    mkdirSync('/etc/postgresql-common/createcluster.d', { recursive: true });
    writeFileSync(NO_MAIN_CLUSTER, 'create_main_cluster = false\n');
  }
  const ownPolicy = !existsSync(POLICY_RC_D);
  if (ownPolicy) writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
}

function main() {
  const who = { root: process.getuid?.() === 0, apt: onPath('apt-get') };
  const plan = planSystemDeps(probeSystem(), who);
  if (plan.action === 'none') return 0;
  if (plan.action === 'tell') {
    console.error(plan.line);
    return 1;
  }
  install(plan.packages);
  const after = planSystemDeps(probeSystem(), { root: false, apt: who.apt });
  if (after.action === 'none') return 0;
  console.error(`still missing after apt-get install: ${after.missing.join(', ')}`);
  return 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main();
