// deploy/compose.yaml and deploy/kubernetes/, run without a container engine: keyway's container is
// the image's ENTRYPOINT + CMD (or the manifest's args) run as a process with the manifest's
// environment, its volumes as temporary folders at the paths it mounts them; the agent is a real
// client (Node's fetch, curl) given exactly the agent container's environment. Not run here: Docker,
// compose's networks, a cluster, the NetworkPolicy, the kubelet's probes (the probe's request is).
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
import { runProcess } from '../helpers/keyway.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { findLeak } from '../helpers/leak-canary.ts';

const values = {
  masterKey: randomBytes(32).toString('base64'),
  agentKey: randomBytes(32).toString('hex'),
  githubToken: CANARY,
  adminToken: randomBytes(32).toString('hex'),
  ca: sharedCa(),
};
const PROXY_PORT = 8787;
const ADMIN_PORT = 8788;

/** The agent: Node 24's own fetch through HTTPS_PROXY (NODE_USE_ENV_PROXY), trusting NODE_EXTRA_CA_CERTS. */
const NODE_AGENT = 'fetch(process.argv[1]).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))';

describe.each([
  ['compose', composeDeployment],
  ['kubernetes', kubernetesDeployment],
] as const)('deploy/%s, keyway run from the image command', (kind, describeDeployment) => {
  const image = readDockerfile();
  const deployment: Deployment = describeDeployment(values);
  let root: string;
  let keywayFs: ContainerFs;
  let agentFs: ContainerFs;
  let keyway: ContainerProcess;
  let container: ContainerOptions;
  let upstream: TestUpstream;
  const outputs: string[] = [];

  beforeAll(async () => {
    expect(existsSync(DIST_CLI), 'dist/ is built by `npm test` (pretest) or `npm run build`').toBe(true);
    upstream = await startUpstream();
    root = mkdtempSync(join(tmpdir(), 'keyway-deploy-'));
    const app = join(root, 'app');
    fillImageRoot(image, app);
    const volumeDirs = new Map<string, string>();
    keywayFs = materialise(deployment.keyway, image, app, root, volumeDirs);
    agentFs = materialise(deployment.agent, image, join(root, 'agent-root'), root, volumeDirs);
    writeTestConfig(keywayFs, image, deployment.configPath);
    const ports = { [PROXY_PORT]: await freePort(), [ADMIN_PORT]: await freePort() };
    container = { image, fs: keywayFs, args: deployment.keyway.args, env: deployment.keyway.env, ports, home: mkdtempSync(join(root, 'home-')) };
    keyway = await startContainer(container);
  });
  afterAll(async () => {
    await keyway?.stop();
    await upstream?.close();
  });

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

  it("passes the orchestrator's health check", async () => {
    expect(await healthy(deployment, keyway)).toBe(true);
  });

  it('answers /metrics to the admin token a scraper is given: the Secret in Kubernetes, data/admin.token in compose', async () => {
    const tokenFile = hostPath(keywayFs, image.workdir, `${image.env['KEYWAY_HOME']}/data/admin.token`)!;
    // Kubernetes hands keyway the Secret's token (KEYWAY_ADMIN_TOKEN_FILE): no token of its own is made.
    expect(existsSync(tokenFile)).toBe(kind === 'compose');
    const token = kind === 'kubernetes' ? values.adminToken : readFileSync(tokenFile, 'utf8').trim();
    const metrics = `http://127.0.0.1:${keyway.ports[ADMIN_PORT]}/metrics`;
    const scraped = await fetch(metrics, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toMatch(/^# HELP keyway_/m);
    const guessed = await fetch(metrics, { headers: { authorization: 'Bearer not-the-token' }, signal: AbortSignal.timeout(5_000) });
    expect(guessed.status).toBe(401);
  });

  it('answers `keyway status` run inside its container, as deploy/README.md says to operate it', async () => {
    const status = await execInContainer(container, ['status', '--json']);
    outputs.push(status.stdout, status.stderr);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ grants: 1, agents: 1, audit: 'ok' });
  });

  it('injects the credential into the request of an agent that has only its own environment', async () => {
    const url = `https://api.example.test:${upstream.port}/echo`;
    const env = agentEnv(deployment.agent, agentFs, keyway);
    const before = upstream.seen.length;
    const node = await runProcess(process.execPath, ['-e', NODE_AGENT, url], env);
    const curl = await runProcess('curl', ['-sS', url], env);
    outputs.push(node.stdout, node.stderr, curl.stdout, curl.stderr);
    expect(node.stderr).toBe('');
    expect(JSON.parse(node.stdout).status).toBe(200);
    expect(curl.stderr).toBe('');
    expect(JSON.parse(curl.stdout).headers.authorization).toBe('Bearer [redacted by keyway]');
    const seen = upstream.seen.slice(before);
    expect(seen.map((r) => r.headers.authorization)).toEqual([`Bearer ${CANARY}`, `Bearer ${CANARY}`]);
    expect(seen.every((r) => r.headers['proxy-authorization'] === undefined)).toBe(true);
  });

  it('refuses the agent a host no grant covers, and an agent without the key', async () => {
    const env = agentEnv(deployment.agent, agentFs, keyway);
    const before = upstream.seen.length;
    const other = await runProcess('curl', ['-sS', '-o', '/dev/null', `https://other.example.test:${upstream.port}/echo`], env);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain('403');
    const keyless = Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value.replace(values.agentKey, 'not-the-key')]));
    const wrong = await runProcess('curl', ['-sS', '-o', '/dev/null', `https://api.example.test:${upstream.port}/echo`], keyless);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('407');
    outputs.push(other.stderr, wrong.stderr);
    expect(upstream.seen.length).toBe(before);
  });

  it('runs the demo agent as a long-running process that gets through keyway, not one that exits and is restarted', async () => {
    const demo = 'https://api.github.com/user';
    const [command, ...args] = deployment.agent.argv ?? [];
    expect(command).toBe('node');
    expect(args.join(' ')).toContain(demo);
    const here = args.map((a) => a.replace(demo, `https://api.example.test:${upstream.port}/echo`));
    const agent = spawn(process.execPath, here, { env: agentEnv(deployment.agent, agentFs, keyway), stdio: ['ignore', 'pipe', 'pipe'] });
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
    const env = agentEnv(deployment.agent, agentFs, keyway);
    const other = ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `https://other.example.test:${upstream.port}/echo`];
    await new Promise((r) => setTimeout(r, 1_500));
    const before = await runProcess('curl', other, env);
    outputs.push(before.stdout, before.stderr);
    expect(before.stderr).toContain('403'); // not watched: the running config stays until told
    const reload = await execInContainer(container, ['reload']);
    outputs.push(reload.stdout, reload.stderr);
    expect(reload.stderr).toBe('');
    expect(reload.code).toBe(0);
    expect(reload.stdout).toMatch(/reloaded its config: changed grants/);
    const after = await runProcess('curl', other, env);
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
    expect(await healthy(deployment, keyway)).toBe(false);
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
 * The manifest's config, with what a loopback test needs: the grant's domain becomes a test name
 * that proxy.hosts maps to 127.0.0.1 (so nothing can reach the real API), loopback is allowed as a
 * destination, and the test upstream's CA is trusted. Its `file:` references become host paths.
 */
function writeTestConfig(fs: ContainerFs, image: ImageSpec, configPath: string): void {
  const path = hostPath(fs, image.workdir, configPath)!;
  const config = parse(readFileSync(path, 'utf8')) as { proxy?: Record<string, unknown>; grants: Record<string, { domains: string[]; secret: string }> };
  // The transparent listeners (Kubernetes) on free ports: a fixed one may be taken on a test machine.
  const transparent = config.proxy?.['transparent'] as Record<string, string> | undefined;
  config.proxy = {
    ...config.proxy,
    ...(transparent ? { transparent: { ...transparent, listen: '127.0.0.1:0', http_listen: '127.0.0.1:0' } } : {}),
    hosts: { 'api.example.test': '127.0.0.1', 'other.example.test': '127.0.0.1' },
    allow_networks: ['127.0.0.0/8'],
    upstream_ca: [TLS_FIXTURES.caPath],
  };
  for (const grant of Object.values(config.grants)) {
    grant.domains = ['api.example.test'];
    if (grant.secret.startsWith('file:')) grant.secret = `file:${hostPath(fs, image.workdir, grant.secret.slice(5))}`;
  }
  writeFileSync(path, stringify(config));
}

/** The agent container's environment, its paths and keyway's address as they are here; nothing else (no PATH beyond the system's). */
function agentEnv(spec: ContainerSpec, fs: ContainerFs, keyway: ContainerProcess): Record<string, string> {
  const env: Record<string, string> = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: mkdtempSync(join(tmpdir(), 'keyway-agent-home-')) };
  for (const [name, value] of Object.entries(spec.env)) {
    env[name] = value.startsWith('/')
      ? (hostPath(fs, '/', value) ?? value)
      : value.replace(/@(?:keyway|127\.0\.0\.1):(\d+)$/, (_all, port: string) => `@127.0.0.1:${keyway.ports[Number(port)]}`);
  }
  return env;
}

async function healthy(deployment: Deployment, keyway: ContainerProcess): Promise<boolean> {
  const local = (port: number) => keyway.ports[port]!;
  if ('argv' in deployment.health) {
    const [command = '', ...args] = deployment.health.argv.map((a) => a.replace(/127\.0\.0\.1:(\d+)/g, (_all, p: string) => `127.0.0.1:${local(Number(p))}`));
    const result = await runProcess(command === 'node' ? process.execPath : command, args, { PATH: '/usr/bin:/bin', HOME: tmpdir() }, undefined, 10_000);
    return result.code === 0;
  }
  try {
    const response = await fetch(`http://127.0.0.1:${local(deployment.health.port)}${deployment.health.path}`, { signal: AbortSignal.timeout(5_000) });
    return response.status >= 200 && response.status < 400; // what the kubelet counts as success
  } catch {
    return false;
  }
}
