// The two containers each deployment in deploy/ describes (keyway and the agent), read from the
// manifests into one shape: command args, environment, and what is mounted where. The Secret's
// values are the test's own (as `kubectl create secret` or compose's secret files would supply).
import { readFileSync } from 'node:fs';
import { DEPLOY, kubernetesEnv, kubernetesObject, readCompose, readDockerfile, userId, type Json, type PodContainer } from './deploy-files.ts';

export interface Mount {
  path: string;
  volume: string;
  readOnly: boolean;
  /** A single-file mount (a compose bind of a file, a compose secret) rather than a folder. */
  file?: { content: string };
  /** Files a folder mount starts with (a ConfigMap's or Secret's keys), by name. */
  files?: Record<string, string>;
}

export interface ContainerSpec {
  name: string;
  args?: string[] | undefined;
  /** The whole command, for the agent (its image's entrypoint only runs it): compose `command`, Kubernetes `command`. */
  argv?: string[] | undefined;
  env: Record<string, string>;
  mounts: Mount[];
}

export interface Deployment {
  keyway: ContainerSpec;
  agent: ContainerSpec;
  /** Where keyway's container reads its config. */
  configPath: string;
  /** The container that applies the redirect rules in the namespace keyway and the agent share. */
  rules: SidecarRules;
  /** The health check as the orchestrator runs it: an argv inside keyway's container, or an HTTP GET. */
  health: { argv: string[] } | { path: string; port: number };
}

export interface SecretValues {
  masterKey: string;
  agentKey: string;
  githubToken: string;
  /** The admin token Prometheus is also given (Kubernetes); compose keeps keyway's own. */
  adminToken: string;
  /** The CA every replica shares (Kubernetes: the Secret keyway-ca), made once elsewhere. */
  ca: { cert: string; key: string };
}

export function composeDeployment(values: SecretValues): Deployment {
  const compose = readCompose({ KEYWAY_AGENT_KEY: values.agentKey });
  const services = compose['services'] as Record<string, Json>;
  const secretFiles: Record<string, string> = { keyway_master_key: `${values.masterKey}\n`, github_token: `${values.githubToken}\n` };
  const service = (name: string): ContainerSpec => {
    const s = services[name]!;
    const mounts: Mount[] = ((s['volumes'] as string[] | undefined) ?? []).map((entry) => {
      const [source = '', path = '', mode] = entry.split(':');
      const bind = source.startsWith('.');
      const mount: Mount = { path, volume: bind ? `bind:${source}` : source, readOnly: mode === 'ro' };
      if (bind) mount.file = { content: readFileSync(`${DEPLOY}${source}`, 'utf8') };
      return mount;
    });
    for (const secret of (s['secrets'] as string[] | undefined) ?? []) {
      const content = secretFiles[secret];
      if (content === undefined) throw new Error(`compose: the test has no value for secret ${secret}`);
      mounts.push({ path: `/run/secrets/${secret}`, volume: `secret:${secret}`, readOnly: true, file: { content } });
    }
    return {
      name,
      args: s['command'] as string[] | undefined,
      argv: s['command'] as string[] | undefined,
      env: (s['environment'] ?? {}) as Record<string, string>,
      mounts,
    };
  };
  const healthTest = (services['keyway']!['healthcheck'] as Json)['test'] as string[];
  if (healthTest[0] !== 'CMD') throw new Error('compose: the healthcheck is expected in CMD form');
  return {
    keyway: service('keyway'),
    agent: service('agent'),
    configPath: '/app/config/keyway.yaml',
    rules: composeRules(),
    health: { argv: healthTest.slice(1) },
  };
}

export function kubernetesDeployment(values: SecretValues): Deployment {
  const secrets = {
    keyway: { 'master-key': values.masterKey, 'agent-key': values.agentKey, 'github-token': values.githubToken, 'admin-token': values.adminToken },
    'keyway-ca': { 'ca.pem': values.ca.cert, 'ca-key.pem': values.ca.key },
  };
  const pod = podSpec();
  const volumes = new Map((pod['volumes'] as Json[]).map((v) => [v['name'] as string, v]));
  const container = (c: PodContainer): ContainerSpec => ({
    name: c.name,
    args: c.args,
    argv: c.command ?? c.args,
    env: kubernetesEnv(c, secrets),
    mounts: (c.volumeMounts ?? []).map((m) => {
      const volume = volumes.get(m.name);
      if (!volume) throw new Error(`${c.name}: volumeMount ${m.name} names no volume`);
      return { path: m.mountPath, volume: m.name, readOnly: m.readOnly === true, files: volumeFiles(volume, secrets) };
    }),
  });
  const keyway = initContainer('keyway');
  const probe = keyway.readinessProbe?.httpGet;
  const port = keyway.ports?.find((p) => p.name === probe?.port || p.containerPort === probe?.port)?.containerPort;
  if (!probe || port === undefined) throw new Error('keyway: the readiness probe names no declared port');
  return {
    keyway: container(keyway),
    agent: container((pod['containers'] as PodContainer[])[0]!),
    configPath: '/app/config/keyway.yaml',
    rules: kubernetesRules(),
    health: { path: probe.path, port },
  };
}

export function podSpec(): Json {
  const deployment = kubernetesObject('Deployment', 'agent');
  return ((deployment['spec'] as Json)['template'] as Json)['spec'] as Json;
}

export function initContainer(name: string): PodContainer {
  const found = ((podSpec()['initContainers'] ?? []) as PodContainer[]).find((c) => c.name === name);
  if (!found) throw new Error(`no init container ${name}`);
  return found;
}

/** What a ConfigMap or Secret volume holds (its items, or every key); an emptyDir holds nothing. */
function volumeFiles(volume: Json, secrets: Record<string, Record<string, string>>): Record<string, string> {
  const source = (volume['configMap'] ?? volume['secret']) as Json | undefined;
  if (source === undefined) return {};
  const data: Record<string, string> =
    volume['configMap'] !== undefined
      ? ((kubernetesObject('ConfigMap', source['name'] as string)['data'] ?? {}) as Record<string, string>)
      : (secrets[source['secretName'] as string] ?? {});
  const items = (source['items'] as Array<{ key: string; path: string }> | undefined) ?? Object.keys(data).map((key) => ({ key, path: key }));
  return Object.fromEntries(
    items.map(({ key, path }) => {
      const value = data[key];
      if (value === undefined) throw new Error(`volume ${volume['name'] as string}: no key ${key}`);
      return [path, value];
    }),
  );
}

/** What the sidecar's redirect rules take from a deployment: the container that applies them, and the uids they tell apart. */
export interface SidecarRules {
  /** The rules container's whole command, as paths inside the image, and its environment. */
  argv: string[];
  env: Record<string, string>;
  /** The uid the rules container runs as. */
  uid: number;
  keywayUid: number;
  agentUid: number;
}

export function composeRules(): SidecarRules {
  const services = readCompose({ KEYWAY_AGENT_KEY: 'unused' })['services'] as Record<string, Json>;
  const rules = services['keyway-rules'];
  const entrypoint = rules?.['entrypoint'] as string[] | undefined;
  if (!rules || !entrypoint) throw new Error('compose: no keyway-rules service with an entrypoint (the image would start keyway)');
  const user = (name: string) => {
    const written = services[name]?.['user'] as string | undefined;
    if (written !== undefined) return userId(written);
    if (name === 'agent') throw new Error('compose: the agent names no user (its image would choose)');
    return userId(readDockerfile().user);
  };
  return {
    // An entrypoint in compose also clears the image's CMD: the command is this, and a `command` if given.
    argv: [...entrypoint, ...((rules['command'] as string[] | undefined) ?? [])],
    env: (rules['environment'] ?? {}) as Record<string, string>,
    uid: user('keyway-rules'),
    keywayUid: user('keyway'),
    agentUid: user('agent'),
  };
}

export function kubernetesRules(): SidecarRules {
  const rules = initContainer('keyway-rules');
  if (!rules.command) throw new Error('keyway-rules: no command (the image would start keyway)');
  const uid = (c: PodContainer) => {
    const found = c.securityContext?.runAsUser;
    if (found === undefined) throw new Error(`${c.name}: no runAsUser`);
    return found;
  };
  return {
    argv: [...rules.command, ...(rules.args ?? [])],
    env: kubernetesEnv(rules, {}),
    uid: uid(rules),
    keywayUid: uid(initContainer('keyway')),
    agentUid: uid((podSpec()['containers'] as PodContainer[])[0]!),
  };
}
