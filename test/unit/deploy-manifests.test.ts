// deploy/ must hold together: the names one file uses are the names another declares, the paths the
// agent is given are where keyway writes, and the variables it gets are the ones `keyway env` sets.
// test/integration/deploy.test.ts then runs what these files describe.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { clientEnvironment } from '../../src/cli/client-env.ts';
import { parseSecretRef } from '../../src/config/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import {
  checkoutPath,
  DEPLOY,
  imageNamingFiles,
  imageReferences,
  KUBERNETES,
  REPO,
  kubernetesObject,
  kubernetesObjects,
  meta,
  readCompose,
  readDockerfile,
  readYaml,
  type Json,
} from '../helpers/deploy-files.ts';
import {
  composeDeployment,
  initContainer,
  kubernetesDeployment,
  kubernetesRules,
  podSpec,
  type ContainerSpec,
  type Deployment,
} from '../helpers/deploy-scenarios.ts';

const values = {
  masterKey: 'master-key-value',
  agentKey: 'agent-key-value',
  githubToken: 'github-token-value',
  adminToken: 'admin-token-value',
  ca: { cert: 'ca-cert-value', key: 'ca-key-value' },
};
const image = readDockerfile();
const HOME = image.env['KEYWAY_HOME']!;
const PUBLIC_CA = image.env['KEYWAY_PUBLIC_CA_DIR']!;
const ADMIN_PATHS = ['/healthz', '/readyz'];

describe('the Dockerfile', () => {
  it('runs keyway from its home, through the entrypoint it copies, and publishes the CA inside the home', () => {
    expect(image.workdir).toBe(HOME);
    expect(image.entrypoint).toEqual(['/bin/sh', `${HOME}/docker-entrypoint.sh`]);
    expect(image.copies).toContainEqual({ from: undefined, src: 'deploy/docker-entrypoint.sh', dest: './docker-entrypoint.sh' });
    expect(image.cmd[0]).toBe('start');
    expect(posix.dirname(PUBLIC_CA)).toBe(HOME);
    const volumes = /^VOLUME (.*)$/m.exec(readFileSync(`${REPO}Dockerfile`, 'utf8'))?.[1];
    expect(JSON.parse(volumes ?? '[]')).toEqual(['certs', 'data', 'logs', 'ca-public'].map((d) => `${HOME}/${d}`));
  });
});

describe('the image name', () => {
  // One name and tag everywhere: a manifest naming another tag than the one the README says to
  // build pulls an image that does not exist (or an old one). The tag is the package's version.
  const expected = `keyway-proxy:${(JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { version: string }).version}`;

  it('is the same in the Dockerfile, deploy/compose.yaml, deploy/kubernetes/ and deploy/README.md', () => {
    const byFile = Object.fromEntries(imageNamingFiles().map((f) => [f.slice(REPO.length), imageReferences(readFileSync(f, 'utf8'))]));
    for (const file of ['Dockerfile', 'deploy/compose.yaml', 'deploy/kubernetes/deployment.yaml', 'deploy/README.md'])
      expect(byFile[file]?.length ?? 0, `${file} names the image`).toBeGreaterThan(0);
    const mismatched = Object.entries(byFile).flatMap(([file, refs]) => refs.filter((r) => r !== expected).map((r) => `${file}: ${r}`));
    expect(mismatched, `every reference is ${expected}`).toEqual([]);
  });

  it('is what compose and Kubernetes run for keyway', () => {
    const services = readCompose({ KEYWAY_AGENT_KEY: 'x' })['services'] as Record<string, Json>;
    expect(services['keyway']!['image']).toBe(expected);
    const images = kubernetesObjects().flatMap(({ object }) => JSON.stringify(object).match(/"image":"keyway-proxy[^"]*"/g) ?? []);
    expect(images.length).toBeGreaterThan(0);
    expect(new Set(images)).toEqual(new Set([`"image":"${expected}"`]));
  });

  it('finds every spelling of the name, and not the npm tarball', () => {
    expect(imageReferences('docker build -t keyway-proxy . && run keyway-proxy:local; see keyway-proxy:1.2.3.')).toEqual([
      'keyway-proxy',
      'keyway-proxy:local',
      'keyway-proxy:1.2.3',
    ]);
    expect(imageReferences('npm install -g ./keyway-proxy-0.1.0.tgz')).toEqual([]);
  });
});

describe.each([
  ['compose', composeDeployment],
  ['kubernetes', kubernetesDeployment],
] as const)('deploy/%s', (kind, describeDeployment) => {
  const deployment: Deployment = describeDeployment(values);
  const { keyway, agent } = deployment;
  const config = parseConfig(parse(mountedFile(keyway, deployment.configPath)), HOME);
  const listen = flag(keyway, '--listen');
  const adminListen = flag(keyway, '--admin-listen');

  it("mounts keyway's config where the image's home reads it, and the config is valid", () => {
    expect(deployment.configPath).toBe(`${HOME}/config/keyway.yaml`);
    expect(Object.keys(config.agents)).toEqual(['agent']);
    expect(config.proxy.unmatched).toBe('deny');
  });

  it('gives keyway every secret its config and master key refer to, from a mounted secret', () => {
    const refs = [...Object.values(config.grants).map((g) => g.secret), ...Object.values(config.agents).map((a) => a.key)];
    for (const ref of refs) {
      const parsed = typeof ref === 'string' ? parseSecretRef(ref) : ref;
      if (!parsed) throw new Error(`not a secret reference: ${String(ref)}`);
      if (parsed.kind === 'env') expect(keyway.env[parsed.name], parsed.name).toBeDefined();
      else if (parsed.kind === 'file') expect(mountedFile(keyway, parsed.path), parsed.path).not.toBe('');
      else throw new Error('the deploy config names no command');
    }
    expect(keyway.env['KEYWAY_MASTER_KEY']).toBeUndefined();
    expect(mountedFile(keyway, keyway.env['KEYWAY_MASTER_KEY_FILE']!).trim()).toBe(values.masterKey);
  });

  it('points the agent at keyway as a configured agent, with the variables `keyway env` sets', () => {
    const url = new URL(agent.env['HTTPS_PROXY']!);
    expect(url.username).toBe('agent');
    expect(url.password).toBe(values.agentKey);
    expect(url.port).toBe(listen.split(':')[1]);
    expect(url.hostname).toBe(kind === 'compose' ? 'keyway' : '127.0.0.1');
    if (kind === 'kubernetes') expect(listen).toBe('127.0.0.1:8787'); // the pod's loopback: no other pod reaches it
    const expected = clientEnvironment(config, { id: 'agent', key: values.agentKey }, `${url.hostname}:${url.port}`);
    expect(
      Object.keys(agent.env)
        .filter((n) => n !== 'KEYWAY_AGENT_KEY')
        .sort(),
    ).toEqual(Object.keys(expected).sort());
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NODE_USE_ENV_PROXY', 'NO_PROXY', 'GIT_HTTP_PROXY_AUTHMETHOD']) {
      expect(agent.env[name], name).toBe(expected[name]);
    }
  });

  it('hands the agent the CA files from the one volume keyway publishes them to, read-only, and nothing else', () => {
    const published = keyway.mounts.find((m) => m.path === PUBLIC_CA);
    expect(published, `keyway mounts a volume at ${PUBLIC_CA}`).toBeDefined();
    const [shared, ...others] = agent.mounts;
    expect(others).toEqual([]);
    expect(shared?.volume).toBe(published?.volume);
    expect(shared?.readOnly).toBe(true);
    expect(agent.env['NODE_EXTRA_CA_CERTS']).toBe(`${shared?.path}/ca.pem`);
    for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO'])
      expect(agent.env[name], name).toBe(`${shared?.path}/bundle.pem`);
    // keyway's certs (with the CA key), data and logs are volumes of their own, never the agent's.
    for (const dir of ['certs', 'data', 'logs']) expect(keyway.mounts.find((m) => m.path === `${HOME}/${dir}`)?.volume).not.toBe(shared?.volume);
  });

  it('checks health on an open admin path of the port keyway is told to listen on', () => {
    const adminPort = Number(adminListen.split(':')[1]);
    if ('argv' in deployment.health) {
      const url = /fetch\('([^']+)'\)/.exec(deployment.health.argv.join(' '))?.[1];
      expect(ADMIN_PATHS).toContain(new URL(url ?? 'http://x/').pathname);
      expect(new URL(url ?? 'http://x/').port).toBe(String(adminPort));
    } else {
      expect(ADMIN_PATHS).toContain(deployment.health.path);
      expect(deployment.health.port).toBe(adminPort);
    }
  });
});

describe('deploy/compose.yaml', () => {
  const compose = readCompose({ KEYWAY_AGENT_KEY: values.agentKey });
  const services = compose['services'] as Record<string, Json>;
  const networks = compose['networks'] as Record<string, Json>;

  it('declares every volume, secret and network the services use', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const entry of (service['volumes'] as string[] | undefined) ?? []) {
        const source = entry.split(':')[0]!;
        if (source.startsWith('.')) expect(existsSync(`${DEPLOY}${source}`), `${name}: ${source}`).toBe(true);
        else expect(compose['volumes'] as Json, `${name}: ${source}`).toHaveProperty(source);
      }
      for (const secret of (service['secrets'] as string[] | undefined) ?? []) expect(compose['secrets'] as Json, `${name}: ${secret}`).toHaveProperty(secret);
      for (const network of service['networks'] as string[]) expect(networks, `${name}: ${network}`).toHaveProperty(network);
    }
  });

  it('puts the agent on internal networks only, keyway also on one with a route out, and publishes no port', () => {
    const agentNets = services['agent']!['networks'] as string[];
    expect(agentNets.every((n) => networks[n]?.['internal'] === true)).toBe(true);
    const keywayNets = services['keyway']!['networks'] as string[];
    expect(agentNets.every((n) => keywayNets.includes(n))).toBe(true);
    expect(keywayNets.some((n) => networks[n]?.['internal'] !== true)).toBe(true);
    for (const service of Object.values(services)) expect(service['ports']).toBeUndefined();
    // The admin API listens on keyway's own loopback: the agent's network cannot reach it.
    expect(flag(composeDeployment(values).keyway, '--admin-listen')).toMatch(/^127\.0\.0\.1:/);
    expect((services['agent']!['depends_on'] as Json)['keyway']).toEqual({ condition: 'service_healthy' });
  });

  it('refuses to start without the agent key instead of sending an empty one', () => {
    expect(() => readCompose({})).toThrow(/KEYWAY_AGENT_KEY/);
  });
});

describe('deploy/kubernetes', () => {
  const pod = podSpec();
  const labels = (((kubernetesObject('Deployment', 'agent')['spec'] as Json)['template'] as Json)['metadata'] as Json)['labels'];

  it('lists every manifest in the kustomization except the Secret, whose values are left empty', () => {
    const resources = (readYaml(`${KUBERNETES}kustomization.yaml`)['resources'] as string[]).sort();
    const files = readdirSync(KUBERNETES).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'secret.yaml');
    expect(resources).toEqual(files.sort());
    const secret = kubernetesObject('Secret', 'keyway');
    expect(Object.keys(secret['stringData'] as Json).sort()).toEqual(['admin-token', 'agent-key', 'github-token', 'master-key']);
    expect(Object.values(secret['stringData'] as Json).every((v) => v === '')).toBe(true);
  });

  it('runs keyway as a native sidecar with the image entrypoint, probed on its admin port', () => {
    const keyway = initContainer('keyway');
    expect(keyway.restartPolicy).toBe('Always');
    expect(keyway.command).toBeUndefined();
    expect(keyway.startupProbe?.httpGet).toEqual(keyway.readinessProbe?.httpGet);
    expect(pod['automountServiceAccountToken']).toBe(false);
  });

  it('gives the agent only the agent key from the Secret', () => {
    const agent = (pod['containers'] as Array<{ env: Array<{ valueFrom?: { secretKeyRef?: { key: string } } }> }>)[0]!;
    const keys = agent.env.flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.key] : []));
    expect(keys).toEqual(['agent-key']);
  });

  it('selects the agent pod in the NetworkPolicy: ingress from the scraper to the admin port only, egress to DNS and 443 only', () => {
    const policy = kubernetesObject('NetworkPolicy', 'agent-pod');
    const spec = policy['spec'] as Json;
    expect((spec['podSelector'] as Json)['matchLabels']).toEqual(labels);
    expect(spec['policyTypes']).toEqual(['Ingress', 'Egress']);
    const adminPort = initContainer('keyway').ports?.find((p) => p.name === 'admin')?.containerPort;
    const ingress = spec['ingress'] as Array<{ from?: Json[]; ports?: Array<{ protocol: string; port: number }> }>;
    expect(ingress).toHaveLength(1);
    // Never "from anywhere" (a rule with no from admits every pod), and never another port.
    expect(ingress[0]!.from?.length).toBe(1);
    expect(ingress[0]!.from![0]).toHaveProperty('podSelector');
    expect(ingress[0]!.from![0]).toHaveProperty('namespaceSelector');
    expect(ingress[0]!.ports).toEqual([{ protocol: 'TCP', port: adminPort }]);
    const ports = (spec['egress'] as Array<{ ports: Array<{ protocol: string; port: number }> }>).flatMap((rule) =>
      rule.ports.map((p) => `${p.protocol}/${p.port}`),
    );
    expect(ports.sort()).toEqual(['TCP/443', 'TCP/53', 'UDP/53']);
    expect(kubernetesObjects().every(({ object }) => typeof meta(object)['name'] === 'string')).toBe(true);
  });
});

describe("the pod's redirect rules (deploy/transparent) in Kubernetes", () => {
  type Secured = { securityContext?: { runAsUser?: number; runAsNonRoot?: boolean; capabilities?: { drop?: string[]; add?: string[] } } };
  const rules = initContainer('keyway-rules') as ReturnType<typeof initContainer> & Secured;
  const keyway = initContainer('keyway') as ReturnType<typeof initContainer> & Secured;
  const agent = (podSpec()['containers'] as Array<Secured>)[0]!;
  const env = Object.fromEntries((rules.env ?? []).map((e) => [e.name, e.value]));
  const configMap = kubernetesObject('ConfigMap', 'keyway-config')['data'] as Record<string, string>;
  const config = parseConfig(parse(configMap['keyway.yaml']!), 'configmap');

  it('runs apply.sh from the image, once, before keyway starts, as root with NET_ADMIN alone', () => {
    const names = (podSpec()['initContainers'] as Array<{ name: string }>).map((c) => c.name);
    expect(names.indexOf('keyway-rules')).toBeLessThan(names.indexOf('keyway'));
    expect(rules.image).toBe(keyway.image);
    expect(rules.restartPolicy).toBeUndefined();
    // The Dockerfile copies deploy/transparent to the image's home, and installs nft there.
    const copied = image.copies.find((c) => c.src === 'deploy/transparent');
    expect(copied).toBeDefined();
    // Exactly apply.sh, nothing before or after it: the command the namespace tests run
    // (kubernetesRules), so what they test is what the pod runs.
    expect(rules.command).toEqual(['/bin/sh', posix.join(HOME, copied!.dest, 'apply.sh')]);
    expect(rules.args).toBeUndefined();
    expect(kubernetesRules().argv).toEqual(rules.command);
    expect(checkoutPath(image, rules.command![1]!)).toBe(`${REPO}deploy/transparent/apply.sh`);
    expect(readFileSync(`${REPO}Dockerfile`, 'utf8')).toMatch(/apt-get install[^\n]*\bnftables\b/);
    expect(rules.securityContext).toMatchObject({ runAsUser: 0, runAsNonRoot: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } });
  });

  it("exempts keyway's uid and no other, and redirects to the ConfigMap's transparent listeners as a configured agent", () => {
    expect(Number(env['KEYWAY_UID'])).toBe(keyway.securityContext?.runAsUser);
    expect(agent.securityContext?.runAsUser).not.toBe(keyway.securityContext?.runAsUser);
    expect(agent.securityContext?.capabilities?.add ?? []).toEqual([]);
    const transparent = config.proxy.transparent!;
    expect(transparent.listen).toMatchObject({ host: '127.0.0.1', port: Number(env['TLS_PORT']) });
    expect(transparent.http_listen).toMatchObject({ host: '127.0.0.1', port: Number(env['HTTP_PORT']) });
    expect(config.agents[transparent.agent!]).toBeDefined();
  });
});

describe('scraping keyway in Kubernetes', () => {
  const template = (kubernetesObject('Deployment', 'agent')['spec'] as Json)['template'] as Json;
  const annotations = (template['metadata'] as Json)['annotations'] as Record<string, string>;
  const keyway = initContainer('keyway');
  const scrape = (readYaml(`${DEPLOY}prometheus-scrape.yaml`)['scrape_configs'] as Json[])[0]!;

  it("annotates the pod with keyway's admin port and /metrics", () => {
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(Number(annotations['prometheus.io/port'])).toBe(keyway.ports?.find((p) => p.name === 'admin')?.containerPort);
    expect(annotations['prometheus.io/path']).toBe('/metrics');
  });

  it('gives keyway its admin token from the Secret, by file, as the scrape job sends it', () => {
    const env = Object.fromEntries((keyway.env ?? []).map((e) => [e.name, e.value]));
    expect(env['KEYWAY_ADMIN_TOKEN_FILE']).toBe('/run/secrets/keyway/admin-token');
    expect(keyway.volumeMounts?.find((m) => m.mountPath === '/run/secrets/keyway')?.name).toBe('keyway-secrets');
    const items = (((podSpec()['volumes'] as Json[]).find((v) => v['name'] === 'keyway-secrets')!['secret'] as Json)['items'] as Json[]).map((i) => i['key']);
    expect(items).toContain('admin-token');
    expect(scrape['authorization']).toEqual({ type: 'Bearer', credentials_file: expect.stringMatching(/\/admin-token$/) });
  });

  it('keeps only annotated pods, on the annotated port and path, with no ServiceMonitor', () => {
    const relabel = scrape['relabel_configs'] as Json[];
    expect(relabel[0]).toEqual({ source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], action: 'keep', regex: 'true' });
    expect(relabel.map((r) => r['target_label'])).toEqual(expect.arrayContaining(['__metrics_path__', '__address__']));
    expect(kubernetesObjects().some(({ object }) => object['kind'] === 'ServiceMonitor')).toBe(false);
  });
});

/** The value of `--name` in keyway's command (from the manifest, else the image's CMD). */
function flag(container: ContainerSpec, name: string): string {
  const argv = container.args ?? image.cmd;
  const value = argv[argv.indexOf(name) + 1];
  if (!argv.includes(name) || value === undefined) throw new Error(`${container.name}: no ${name}`);
  return value;
}

/** The content of a file at a container path, from what is mounted there. */
function mountedFile(container: ContainerSpec, path: string): string {
  for (const mount of container.mounts) {
    if (mount.file && mount.path === path) return mount.file.content;
    const name = path.startsWith(`${mount.path}/`) ? path.slice(mount.path.length + 1) : undefined;
    if (name !== undefined && mount.files?.[name] !== undefined) return mount.files[name];
  }
  throw new Error(`${container.name}: nothing mounted at ${path}`);
}
