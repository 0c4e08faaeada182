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
  type PodContainer,
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
] as const)('deploy/%s', (_kind, describeDeployment) => {
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

  it('gives the agent no proxy variable and no key: only the CA variables `keyway env` sets', () => {
    const all = clientEnvironment(config, { id: 'agent', key: values.agentKey }, listen);
    const caNames = Object.keys(all).filter((name) => all[name]!.endsWith('.pem'));
    expect(caNames.length).toBeGreaterThan(0);
    expect(Object.keys(agent.env).sort()).toEqual(caNames.sort());
    for (const [name, value] of Object.entries(agent.env)) expect(value, name).not.toContain(values.agentKey);
    // The proxy port on the loopback of the namespace keyway and the agent share: nothing else reaches it.
    expect(listen).toBe('127.0.0.1:8787');
  });

  it("has keyway take the agent's redirected connections on the rules' ports, as a configured agent", () => {
    const transparent = config.proxy.transparent;
    expect(transparent?.listen).toMatchObject({ host: '127.0.0.1', port: Number(deployment.rules.env['TLS_PORT']) });
    expect(transparent?.http_listen).toMatchObject({ host: '127.0.0.1', port: Number(deployment.rules.env['HTTP_PORT']) });
    expect(config.agents[transparent?.agent ?? '']).toBeDefined();
  });

  it("runs exactly the image's apply.sh as the rules' command, exempting keyway's uid and not the agent's", () => {
    // The Dockerfile copies deploy/transparent to the image's home, and installs nft there.
    const copied = image.copies.find((c) => c.src === 'deploy/transparent');
    expect(copied).toBeDefined();
    // Exactly apply.sh, nothing before or after it: what the namespace tests run (applyRules), so
    // what they test is what the deployment runs.
    expect(deployment.rules.argv).toEqual(['/bin/sh', posix.join(HOME, copied!.dest, 'apply.sh')]);
    expect(checkoutPath(image, deployment.rules.argv[1]!)).toBe(`${REPO}deploy/transparent/apply.sh`);
    expect(readFileSync(`${REPO}Dockerfile`, 'utf8')).toMatch(/apt-get install[^\n]*\bnftables\b/);
    expect(deployment.rules.uid).toBe(0);
    expect(Number(deployment.rules.env['KEYWAY_UID'])).toBe(deployment.rules.keywayUid);
    expect(deployment.rules.agentUid).not.toBe(deployment.rules.keywayUid);
    expect(deployment.rules.agentUid).not.toBe(0);
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
      for (const network of (service['networks'] as string[] | undefined) ?? []) expect(networks, `${name}: ${network}`).toHaveProperty(network);
      const joined = /^service:(.+)$/.exec((service['network_mode'] as string | undefined) ?? '')?.[1];
      if (joined !== undefined) expect(services, `${name}: ${joined}`).toHaveProperty(joined);
    }
  });

  it("puts the agent and the rules in keyway's network namespace, keyway on a network with a route out, and publishes no port", () => {
    for (const name of ['agent', 'keyway-rules']) {
      expect(services[name]!['network_mode'], name).toBe('service:keyway');
      expect(services[name]!['networks'], name).toBeUndefined();
    }
    const keywayNets = services['keyway']!['networks'] as string[];
    expect(keywayNets.some((n) => networks[n]?.['internal'] !== true)).toBe(true);
    for (const service of Object.values(services)) expect(service['ports']).toBeUndefined();
    // The admin API listens on the namespace's loopback only: no other container reaches it.
    expect(flag(composeDeployment(values).keyway, '--admin-listen')).toMatch(/^127\.0\.0\.1:/);
  });

  it('applies the rules once, as root with NET_ADMIN alone, before the agent starts, and the agent has no capability', () => {
    const rules = services['keyway-rules']!;
    expect(rules['image']).toBe(services['keyway']!['image']);
    expect(rules['restart']).toBe('no');
    expect(rules['cap_drop']).toEqual(['ALL']);
    expect(rules['cap_add']).toEqual(['NET_ADMIN']);
    expect(rules['read_only']).toBe(true);
    expect(services['agent']!['depends_on']).toEqual({
      keyway: { condition: 'service_healthy' },
      'keyway-rules': { condition: 'service_completed_successfully' },
    });
    expect(services['agent']!['cap_drop']).toEqual(['ALL']);
    expect(services['agent']!['cap_add']).toBeUndefined();
    expect(services['agent']!['privileged']).toBeUndefined();
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

  it('gives the agent nothing from a Secret', () => {
    const agent = (pod['containers'] as Array<{ env: Array<{ valueFrom?: unknown }>; envFrom?: unknown }>)[0]!;
    expect(agent.env.filter((e) => e.valueFrom !== undefined)).toEqual([]);
    expect(agent.envFrom).toBeUndefined();
  });

  it('selects the agent pod in the NetworkPolicy: ingress from the scraper to the admin port only, egress to the cluster DNS and public 443 only', () => {
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
    const egress = spec['egress'] as Array<{ to?: Json[]; ports: Array<{ protocol: string; port: number }> }>;
    const ports = egress.flatMap((rule) => rule.ports.map((p) => `${p.protocol}/${p.port}`));
    expect(ports.sort()).toEqual(['TCP/443', 'TCP/53', 'UDP/53']);
    // Every rule names where it goes (a rule with no `to` is any address): port 53 to the cluster
    // DNS pods only, as the pod's rules send DNS to its resolv.conf's nameserver only; 443 to
    // public addresses, never the cluster's own or the node's.
    expect(egress.every((rule) => (rule.to?.length ?? 0) > 0)).toBe(true);
    const dns = egress.find((rule) => rule.ports.some((p) => p.port === 53))!;
    expect(dns.ports.every((p) => p.port === 53)).toBe(true);
    expect(dns.to).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    ]);
    const web = egress.find((rule) => rule.ports.some((p) => p.port === 443))!;
    const block = (web.to![0] as { ipBlock: { cidr: string; except: string[] } }).ipBlock;
    expect(web.to).toHaveLength(1);
    expect(block.cidr).toBe('0.0.0.0/0');
    expect(block.except).toEqual(expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '127.0.0.0/8']));
    expect(kubernetesObjects().every(({ object }) => typeof meta(object)['name'] === 'string')).toBe(true);
  });
});

describe("the pod's redirect rules (deploy/transparent) in Kubernetes", () => {
  const rules = initContainer('keyway-rules');
  const keyway = initContainer('keyway');
  const agent = (podSpec()['containers'] as PodContainer[])[0]!;

  it('runs apply.sh from the image, once, before keyway starts, as root with NET_ADMIN alone', () => {
    const names = (podSpec()['initContainers'] as Array<{ name: string }>).map((c) => c.name);
    expect(names.indexOf('keyway-rules')).toBeLessThan(names.indexOf('keyway'));
    expect(rules.image).toBe(keyway.image);
    expect(rules.restartPolicy).toBeUndefined();
    // command replaces the image's ENTRYPOINT; with no args, CMD is dropped too: apply.sh and nothing else.
    expect(rules.command).toEqual(kubernetesRules().argv);
    expect(rules.args).toBeUndefined();
    expect(rules.securityContext).toMatchObject({ runAsUser: 0, runAsNonRoot: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } });
  });

  it("exempts keyway's runAsUser, and the agent runs as another with no capability", () => {
    const env = Object.fromEntries((rules.env ?? []).map((e) => [e.name, e.value]));
    expect(Number(env['KEYWAY_UID'])).toBe(keyway.securityContext?.runAsUser);
    expect(agent.securityContext?.runAsUser).not.toBe(keyway.securityContext?.runAsUser);
    expect(agent.securityContext?.capabilities).toEqual({ drop: ['ALL'] });
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
