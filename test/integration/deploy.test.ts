// deploy/compose.yaml and deploy/kubernetes/, run without a container engine, in a pod network the
// test makes (pod-network.ts: the namespace keyway and the agent share, and one outside it where the
// API is). The rules container's command and environment apply the redirect rules there first;
// keyway's container is the image's ENTRYPOINT + CMD (or the manifest's args) run as a process in the
// pod as the manifest's user, with the manifest's environment, its volumes as temporary folders at
// the paths it mounts them; the agent is a real client (Node's fetch, curl) run in the pod as the
// agent's user, given exactly the agent container's environment: no proxy setting, so what reaches
// keyway comes through the rules. The kubelet's probes and Prometheus come from outside the pod.
// Not run here: Docker, a cluster, the NetworkPolicy. Needs root (network namespaces, nftables).
import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DIST_CLI, SRC_CLI } from '../helpers/child-proxy.ts';
import {
  execInContainer,
  fillImageRoot,
  hostPath,
  startContainer,
  type ContainerFs,
  type ContainerOptions,
  type ContainerProcess,
} from '../helpers/container-process.ts';
import { DEPLOY, KUBERNETES, readDockerfile, type ImageSpec } from '../helpers/deploy-files.ts';
import { composeDeployment, kubernetesDeployment, type ContainerSpec, type Deployment } from '../helpers/deploy-scenarios.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { runnableFile, runnableKeyway } from '../helpers/runnable-copy.ts';
import { waitFor } from '../helpers/wait.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import {
  applyRules,
  chownTree,
  createPodNetwork,
  OUTSIDE_ADDRESS,
  POD_ADDRESS,
  startOutsideUpstream,
  type OutsideUpstream,
  type PodNetwork,
  type Ran,
} from '../helpers/pod-network.ts';

const values = {
  masterKey: randomBytes(32).toString('base64'),
  agentKey: randomBytes(32).toString('hex'),
  githubToken: CANARY,
  adminToken: randomBytes(32).toString('hex'),
  ca: sharedCa(),
};
const ADMIN_PORT = 8788;
// The API, outside the pod; the agent's hosts file names an address nobody holds for it (keyway
// routes by name: the redirected connection never goes where the agent dialled).
const UPSTREAM = OUTSIDE_ADDRESS.v4;
const ELSEWHERE = '203.0.113.7';
const API = 'https://api.example.test/echo';
const OTHER = 'https://other.example.test/echo';

/** The agent: Node 24's own fetch, with no proxy setting, trusting NODE_EXTRA_CA_CERTS. */
const NODE_AGENT = 'fetch(process.argv[1]).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))';

describe.each([
  ['compose', composeDeployment],
  ['kubernetes', kubernetesDeployment],
] as const)('deploy/%s, keyway run from the image command', (kind, describeDeployment) => {
  const image = readDockerfile();
  const deployment: Deployment = describeDeployment(values);
  const { rules } = deployment;
  let network: PodNetwork;
  let root: string;
  let keywayFs: ContainerFs;
  let agentFs: ContainerFs;
  let keyway: ContainerProcess;
  let container: ContainerOptions;
  let upstream: OutsideUpstream;
  const outputs: string[] = [];

  beforeAll(async () => {
    expect(existsSync(DIST_CLI), 'dist/ is built by `npm test` (pretest) or `npm run build`').toBe(true);
    network = createPodNetwork(`deploy-${kind.slice(0, 4)}`, {
      hosts: `127.0.0.1 localhost\n${ELSEWHERE} api.example.test other.example.test\n`,
      resolvConf: 'nameserver 10.253.0.53\n',
    });
    applyRules(network, rules);
    upstream = await startOutsideUpstream(network, UPSTREAM, 443);
    root = mkdtempSync(join(tmpdir(), 'keyway-deploy-'));
    chmodSync(root, 0o755); // the agent's user reaches the CA volume inside
    const app = join(root, 'app');
    fillImageRoot(image, app);
    const volumeDirs = new Map<string, string>();
    keywayFs = materialise(deployment.keyway, image, app, root, volumeDirs);
    agentFs = materialise(deployment.agent, image, join(root, 'agent-root'), root, volumeDirs);
    writeTestConfig(keywayFs, image, deployment.configPath);
    const home = join(root, 'home');
    mkdirSync(home);
    // The image's files and the volumes are keyway's user's, as the Dockerfile's chown and fsGroup make them.
    chownTree(root, rules.keywayUid);
    container = {
      image,
      fs: keywayFs,
      args: deployment.keyway.args,
      env: deployment.keyway.env,
      ports: {}, // a namespace of its own: every port as the manifest says
      home,
      inside: (argv, env) => network.argv(rules.keywayUid, argv, env),
    };
    keyway = await startContainer(container);
  });
  afterAll(async () => {
    await keyway?.stop();
    await upstream?.close();
    network?.remove();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** A command as the agent container: its user, in the pod, with exactly its environment. */
  const asAgent = (argv: string[]): Ran => {
    const ran = network.run(rules.agentUid, argv, agentEnv(deployment.agent, agentFs));
    outputs.push(ran.stdout, ran.stderr);
    return ran;
  };
  /** GET on keyway's admin port, from where the deployment's scraper comes. */
  const adminGet = (path: string, token?: string) => admin(kind, network, rules.keywayUid, path, token);
  const auditLines = () =>
    readFileSync(hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/logs/audit.jsonl`)!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('starts keyway on the paths the manifest mounts, and hands the agent the CA but not its key', () => {
    const certs = hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/certs`)!;
    const shared = hostPath(agentFs, '/', dirname(deployment.agent.env['NODE_EXTRA_CA_CERTS']!))!;
    expect(readdirSync(certs)).toContain('ca-key.pem');
    // The agent's CA variables name files that exist in the volume it mounts, and are keyway's CA.
    expect(readFileSync(hostPath(agentFs, '/', deployment.agent.env['NODE_EXTRA_CA_CERTS']!)!, 'utf8')).toBe(readFileSync(join(certs, 'ca.pem'), 'utf8'));
    for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) {
      expect(readFileSync(hostPath(agentFs, '/', deployment.agent.env[name]!)!, 'utf8'), name).toBe(readFileSync(join(certs, 'bundle.pem'), 'utf8'));
    }
    // A hostile agent reads every file it can reach: the CA key, the store and its key are not among them.
    expect(readdirSync(shared).sort()).toEqual(['bundle.pem', 'ca.pem']);
    // And the agent mounts that one volume only: not certs/, data/, the config or the secrets.
    expect(deployment.agent.mounts.map((m) => m.volume)).toEqual([deployment.keyway.mounts.find((m) => m.path === image.env['KEYWAY_PUBLIC_CA_DIR'])!.volume]);
  });

  it('presents the shared CA from the Secret in Kubernetes (every replica the same), a CA of its own in compose', () => {
    const certs = hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/certs`)!;
    const fingerprint = new X509Certificate(readFileSync(join(certs, 'ca.pem'))).fingerprint256;
    const shared = new X509Certificate(values.ca.cert).fingerprint256;
    expect(fingerprint === shared).toBe(kind === 'kubernetes');
  });

  it("passes the orchestrator's health check", () => {
    expect(healthy(deployment, network, rules.keywayUid)).toBe(true);
  });

  it('answers /metrics to the admin token a scraper is given: the Secret in Kubernetes, data/admin.token in compose', async () => {
    const tokenFile = hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/data/admin.token`)!;
    // Kubernetes hands keyway the Secret's token (KEYWAY_ADMIN_TOKEN_FILE): no token of its own is made.
    expect(existsSync(tokenFile)).toBe(kind === 'compose');
    const token = kind === 'kubernetes' ? values.adminToken : readFileSync(tokenFile, 'utf8').trim();
    const scraped = adminGet('/metrics', token);
    expect(scraped.status).toBe(200);
    expect(scraped.body).toMatch(/^# HELP keyway_/m);
    expect(adminGet('/metrics', 'not-the-token').status).toBe(401);
  });

  it('answers `keyway status` run inside its container, as deploy/README.md says to operate it', async () => {
    const status = await execInContainer(container, ['status', '--json']);
    outputs.push(status.stdout, status.stderr);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ grants: 1, agents: 1, audit: 'ok' });
  });

  it('injects the credential into the request of an agent that has only its own environment, taken by the rules to keyway', async () => {
    expect(Object.keys(deployment.agent.env).filter((name) => /proxy/i.test(name))).toEqual([]);
    const before = upstream.seen.length;
    const node = asAgent([runnableKeyway().node, '-e', NODE_AGENT, API]);
    const curl = asAgent(['curl', '-sS', API]);
    expect(node.stderr).toBe('');
    expect(JSON.parse(node.stdout).status).toBe(200);
    expect(curl.stderr).toBe('');
    expect(JSON.parse(curl.stdout).headers.authorization).toBe('Bearer [redacted by keyway]');
    const seen = await waitFor(() => (upstream.seen.length >= before + 2 ? upstream.seen.slice(before) : undefined), 'the two requests upstream');
    expect(seen.map((r) => r.headers.authorization)).toEqual([`Bearer ${CANARY}`, `Bearer ${CANARY}`]);
    expect(seen.every((r) => r.headers['proxy-authorization'] === undefined)).toBe(true);
    // As the agent the transparent listeners name, having come through the rules.
    const lines = await waitFor(() => {
      const found = auditLines().filter((l) => l['decision'] === 'inject' && l['phase'] !== 'sent');
      return found.length >= 2 ? found : undefined;
    }, 'the audit lines');
    for (const line of lines) expect(line).toMatchObject({ agent: 'agent', via: 'transparent' });
  });

  it('refuses the agent a host no grant covers and the API by its address, and it has no key to try the proxy port with', async () => {
    const before = upstream.seen.length;
    expect(asAgent(['curl', '-sS', '-o', '/dev/null', '--max-time', '5', OTHER]).code).not.toBe(0);
    // No server name to route by: refused, never sent where the agent dialled.
    expect(asAgent(['curl', '-sS', '-o', '/dev/null', '--max-time', '5', `https://${UPSTREAM}/echo`]).code).not.toBe(0);
    const refusals = await waitFor(() => {
      const found = auditLines().filter((l) => l['decision'] === 'deny' && l['via'] === 'transparent');
      return found.length >= 2 ? found : undefined;
    }, 'the refusals');
    expect(refusals.map((l) => l['code']).sort()).toEqual(['host_not_allowed', 'no_destination']);
    // The proxy port is on the shared loopback, but without the key (only keyway has it) it answers 407.
    const direct = asAgent([
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      `http://127.0.0.1:${flagPort(deployment.keyway, '--listen')}`,
      'http://api.example.test/',
    ]);
    expect(direct.stdout).toBe('407');
    expect(upstream.seen.length).toBe(before);
  });

  it('runs the demo agent as a long-running process that gets through keyway, not one that exits and is restarted', async () => {
    const demo = 'https://api.github.com/user';
    const [command, ...args] = deployment.agent.argv ?? [];
    expect(command).toBe('node');
    expect(args.join(' ')).toContain(demo);
    const here = args.map((a) => a.replace(demo, API));
    const agent = network.spawn(rules.agentUid, [runnableKeyway().node, ...here], agentEnv(deployment.agent, agentFs));
    let output = '';
    agent.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    agent.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    try {
      await waitFor(() => (/\b200\b/.test(output) ? true : undefined), `the demo agent's first answer (${output})`, 10_000);
      await new Promise((r) => setTimeout(r, 2_000));
      expect(agent.exitCode, output).toBeNull(); // still running: nothing for the orchestrator to restart
      expect(agent.signalCode).toBeNull();
    } finally {
      agent.kill('SIGTERM');
    }
    outputs.push(output);
  });

  it('applies an edited config only on `keyway reload` run inside its container, as the config file says', async () => {
    const comment = configComment(kind);
    expect(comment).toMatch(/not watch/);
    expect(comment).toMatch(/node dist\/cli\/main\.js reload/);
    const configPath = hostPath(keywayFs, image.workdir, deployment.configPath)!;
    const edited = readFileSync(configPath, 'utf8').replace('- api.example.test', '- api.example.test\n      - other.example.test');
    expect(edited).toContain('other.example.test');
    // The kubelet updates a ConfigMap folder by writing a new timestamped folder and swapping the
    // ..data symlink over to it; compose's bind mount shows an edit made in place.
    if (kind === 'kubernetes') kubeletUpdate(dirname(configPath), basename(configPath), edited);
    else writeFileSync(configPath, edited);
    const other = ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', OTHER];
    await new Promise((r) => setTimeout(r, 1_500));
    const before = asAgent(other);
    expect(before.code).not.toBe(0); // not watched: the running config stays until told
    const reload = await execInContainer(container, ['reload']);
    outputs.push(reload.stdout, reload.stderr);
    expect(reload.stderr).toBe('');
    expect(reload.code).toBe(0);
    expect(reload.stdout).toMatch(/reloaded its config: changed grants/);
    const after = asAgent(other);
    expect(after.stdout).toBe('200');
    // The audit line is written as the response ends: wait for it, so the count below is settled.
    const audit = hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/logs/audit.jsonl`)!;
    const injected = () =>
      readFileSync(audit, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"decision":"inject"') && !l.includes('"phase":"sent"') && l.includes('other.example.test'));
    await waitFor(() => (injected().length === 1 ? true : undefined), 'the audit line of the injected request');
  });

  it('leaks no secret into any output, and stops cleanly on SIGTERM, failing its health check after', async () => {
    const audit = readFileSync(hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/logs/audit.jsonl`)!, 'utf8');
    // One outcome line per request (each also has its write-ahead line, `"phase":"sent"`).
    expect(audit.split('\n').filter((l) => l.includes('"decision":"inject"') && !l.includes('"phase":"sent"'))).toHaveLength(4);
    for (const text of [keyway.output(), audit, ...outputs]) {
      expect(findLeak(text, CANARY)).toBeUndefined();
      expect(text).not.toContain(values.masterKey);
      expect(text).not.toContain(values.agentKey);
      expect(text).not.toContain(values.adminToken);
      expect(text).not.toContain(values.ca.key.split('\n')[1]);
    }
    expect(await keyway.stop()).toBe(0);
    expect(healthy(deployment, network, rules.keywayUid)).toBe(false);
  });
});

/** A CA made once in a home of its own, as deploy/kubernetes/secret.yaml says to (`keyway init`). */
function sharedCa(): { cert: string; key: string } {
  const home = mkdtempSync(join(tmpdir(), 'keyway-shared-ca-'));
  execFileSync(process.execPath, [SRC_CLI, 'init', '--home', home], { env: { PATH: process.env['PATH'] ?? '', HOME: home }, stdio: 'ignore' });
  return { cert: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8'), key: readFileSync(join(home, 'certs', 'ca-key.pem'), 'utf8') };
}

/** The comment at the top of the config file each deployment mounts: what it says about edits. */
function configComment(kind: 'compose' | 'kubernetes'): string {
  const text = readFileSync(kind === 'compose' ? `${DEPLOY}keyway.yaml` : `${KUBERNETES}configmap.yaml`, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .join(' ')
    .replace(/\s*#\s*/g, ' ');
}

/**
 * What the kubelet does to a ConfigMap volume (atomic_writer): the data in a new hidden folder, the
 * ..data symlink swapped to it by rename, and each key a symlink through ..data. The first call also
 * turns the plain folder the test made into that layout.
 */
function kubeletUpdate(dir: string, key: string, content: string): void {
  const version = `..${Date.now()}_${randomBytes(4).toString('hex')}`;
  mkdirSync(join(dir, version));
  writeFileSync(join(dir, version, key), content);
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (!lstatSync(join(dir, key)).isSymbolicLink()) {
    rmSync(join(dir, key));
    symlinkSync(join('..data', key), join(dir, key));
  }
}

/** Each mount as a folder (or file) here: under the image's WORKDIR inside `app`, else a volume folder shared by every container that mounts it. */
function materialise(spec: ContainerSpec, image: ImageSpec, app: string, root: string, volumeDirs: Map<string, string>): ContainerFs {
  const fs: ContainerFs = { app, mounts: {} };
  for (const mount of spec.mounts) {
    const underApp = mount.path === image.workdir || mount.path.startsWith(`${image.workdir}/`);
    const host = volumeDirs.get(mount.volume) ?? (underApp ? join(app, mount.path.slice(image.workdir.length)) : join(root, 'volumes', mount.volume));
    volumeDirs.set(mount.volume, host);
    fs.mounts[mount.path] = host;
    if (mount.file) {
      mkdirSync(dirname(host), { recursive: true });
      writeFileSync(host, mount.file.content);
      continue;
    }
    mkdirSync(host, { recursive: true });
    for (const [name, content] of Object.entries(mount.files ?? {})) writeFileSync(join(host, name), content);
  }
  return fs;
}

/**
 * The manifest's config, with what the test needs: the grant's domain becomes a test name that
 * proxy.hosts maps to the test upstream outside the pod (so nothing can reach the real API), that
 * address is allowed as a destination, and the test upstream's CA is trusted. Its `file:`
 * references become host paths. The listeners stay as written: the pod's namespace is the test's own.
 */
function writeTestConfig(fs: ContainerFs, image: ImageSpec, configPath: string): void {
  const path = hostPath(fs, image.workdir, configPath)!;
  const config = parse(readFileSync(path, 'utf8')) as { proxy?: Record<string, unknown>; grants: Record<string, { domains: string[]; secret: string }> };
  config.proxy = {
    ...config.proxy,
    hosts: { 'api.example.test': UPSTREAM, 'other.example.test': UPSTREAM },
    allow_networks: [`${UPSTREAM}/32`],
    // A copy the container's user can read wherever this checkout was cloned (a 0700 folder).
    upstream_ca: [runnableFile(TLS_FIXTURES.caPath)],
  };
  for (const grant of Object.values(config.grants)) {
    grant.domains = ['api.example.test'];
    if (grant.secret.startsWith('file:')) grant.secret = `file:${hostPath(fs, image.workdir, grant.secret.slice(5))}`;
  }
  writeFileSync(path, stringify(config));
}

/** The agent container's environment, its paths as they are here; nothing else (the pod network adds PATH). */
function agentEnv(spec: ContainerSpec, fs: ContainerFs): Record<string, string> {
  const env: Record<string, string> = { HOME: '/tmp' };
  for (const [name, value] of Object.entries(spec.env)) env[name] = value.startsWith('/') ? (hostPath(fs, '/', value) ?? value) : value;
  return env;
}

/** The port of a HOST:PORT flag in keyway's command. */
function flagPort(spec: ContainerSpec, flag: string): number {
  const args = spec.args ?? [];
  return Number(args[args.indexOf(flag) + 1]?.split(':').at(-1));
}

/**
 * GET on keyway's admin port as the deployment's scraper does it: in Kubernetes Prometheus comes
 * from another pod (here: outside the pod, to its address); in compose there is none, so from
 * inside keyway's container (`docker compose exec`), on the loopback it listens on.
 */
function admin(kind: 'compose' | 'kubernetes', network: PodNetwork, keywayUid: number, path: string, token?: string): { status: number; body: string } {
  const argv = ['curl', '-sS', '--max-time', '5', '-w', '\n%{http_code}', ...(token ? ['-H', `authorization: Bearer ${token}`] : [])];
  const ran =
    kind === 'kubernetes'
      ? network.runOutside([...argv, `http://${POD_ADDRESS.v4}:${ADMIN_PORT}${path}`])
      : network.run(keywayUid, [...argv, `http://127.0.0.1:${ADMIN_PORT}${path}`]);
  const at = ran.stdout.lastIndexOf('\n');
  return { status: Number(ran.stdout.slice(at + 1)), body: ran.stdout.slice(0, at) };
}

/** The health check as the orchestrator runs it: compose's inside keyway's container, the kubelet's probe from the node (outside the pod). */
function healthy(deployment: Deployment, network: PodNetwork, keywayUid: number): boolean {
  if ('argv' in deployment.health) {
    const [command = '', ...args] = deployment.health.argv;
    return network.run(keywayUid, [command === 'node' ? runnableKeyway().node : command, ...args]).code === 0;
  }
  const ran = network.runOutside([
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '--max-time',
    '5',
    '-w',
    '%{http_code}',
    `http://${POD_ADDRESS.v4}:${deployment.health.port}${deployment.health.path}`,
  ]);
  const status = Number(ran.stdout);
  return status >= 200 && status < 400; // what the kubelet counts as success
}
