// A pod's network for the sidecar tests, made of two network namespaces: the pod's (keyway, the
// agent and their redirect rules share it, as the containers of a pod do) and one that stands in for
// everything outside it, joined by a veth pair. The pod's default routes lead there, so a packet the
// rules let out arrives in the outside namespace, where a test's listener can see it; a packet for
// an address nobody holds there is dropped (that namespace forwards nothing). The pod's /etc/hosts
// and /etc/resolv.conf are the test's own (`ip netns exec` mounts /etc/netns/NAME/* over /etc): the
// agent's resolver and apply.sh read the same file, as the containers of a pod do. Needs root.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { lchownSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkoutPath, readDockerfile } from './deploy-files.ts';
import type { SidecarRules } from './deploy-scenarios.ts';
import type { SeenRequest } from './upstream.ts';
import { waitFor } from './wait.ts';

const UPSTREAM_CHILD = fileURLToPath(new URL('./upstream-child.ts', import.meta.url));

/** The two ends of the link: the pod's address, and the outside namespace's own. */
export const POD_ADDRESS = { v4: '10.253.0.1', v6: 'fd00:253::1' };
export const OUTSIDE_ADDRESS = { v4: '10.253.0.2', v6: 'fd00:253::2' };
const PREFIX = { v4: 24, v6: 64 };
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface PodNetwork {
  readonly pod: string;
  readonly outside: string;
  /** The argv that runs `argv` in the pod as `uid` (its group too, no others) with exactly `env` (plus PATH). */
  argv(uid: number, argv: string[], env?: Record<string, string>): string[];
  run(uid: number, argv: string[], env?: Record<string, string>): Ran;
  spawn(uid: number, argv: string[], env?: Record<string, string>): ChildProcess;
  /** A command in the outside namespace, as root. */
  spawnOutside(argv: string[], env?: Record<string, string>): ChildProcess;
  runOutside(argv: string[], env?: Record<string, string>): Ran;
  remove(): void;
}

export interface PodNetworkOptions {
  /** The pod's /etc/hosts. */
  hosts: string;
  /** The pod's /etc/resolv.conf. */
  resolvConf: string;
  /** More addresses the outside namespace holds (each on the link's subnet), for listeners. */
  outsideAddresses?: string[];
}

export function sh(command: string, args: string[], env?: Record<string, string>): Ran {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, ...(env ? { env } : {}) });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function must(command: string, args: string[]): string {
  const r = sh(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Makes the two namespaces; `tag` keeps their names apart from other tests' (the pid is added). */
export function createPodNetwork(tag: string, options: PodNetworkOptions): PodNetwork {
  if (process.getuid?.() !== 0) throw new Error('this test makes network namespaces and nftables rules: run it as root (CI does)');
  const pod = `kw-${tag}-${process.pid}`;
  const outside = `kw-${tag}-out-${process.pid}`;
  const outsideArgs = (argv: string[], env: Record<string, string>) => [
    'netns',
    'exec',
    outside,
    'env',
    '-i',
    `PATH=${PATH}`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...argv,
  ];
  const network: PodNetwork = {
    pod,
    outside,
    argv: (uid, argv, env = {}) => [
      'ip',
      'netns',
      'exec',
      pod,
      ...(uid === 0 ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']),
      'env',
      '-i',
      `PATH=${PATH}`,
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...argv,
    ],
    run: (uid, argv, env) => {
      const [command, ...args] = network.argv(uid, argv, env);
      return sh(command!, args);
    },
    spawn: (uid, argv, env) => {
      const [command, ...args] = network.argv(uid, argv, env);
      return spawn(command!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    },
    spawnOutside: (argv, env = {}) => spawn('ip', outsideArgs(argv, env), { stdio: ['ignore', 'pipe', 'pipe'] }),
    runOutside: (argv, env = {}) => sh('ip', outsideArgs(argv, env)),
    remove: () => {
      sh('ip', ['netns', 'del', pod]);
      sh('ip', ['netns', 'del', outside]);
      rmSync(`/etc/netns/${pod}`, { recursive: true, force: true });
    },
  };
  try {
    must('ip', ['netns', 'add', pod]);
    must('ip', ['netns', 'add', outside]);
    // Names are per namespace: the pair is made inside the pod, its far end moved outside.
    must('ip', ['-n', pod, 'link', 'add', 'kw0', 'type', 'veth', 'peer', 'name', 'kw1', 'netns', outside]);
    for (const [ns, link, own] of [
      [pod, 'kw0', POD_ADDRESS],
      [outside, 'kw1', OUTSIDE_ADDRESS],
    ] as const) {
      must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      must('ip', ['-n', ns, 'addr', 'add', `${own.v4}/${PREFIX.v4}`, 'dev', link]);
      // nodad: usable at once, not after duplicate address detection's second or two.
      must('ip', ['-n', ns, 'addr', 'add', `${own.v6}/${PREFIX.v6}`, 'dev', link, 'nodad']);
      must('ip', ['-n', ns, 'link', 'set', link, 'up']);
    }
    for (const address of options.outsideAddresses ?? []) {
      const v6 = address.includes(':');
      must('ip', ['-n', outside, 'addr', 'add', `${address}/${v6 ? PREFIX.v6 : PREFIX.v4}`, 'dev', 'kw1', ...(v6 ? ['nodad'] : [])]);
    }
    must('ip', ['-n', pod, 'route', 'add', 'default', 'via', OUTSIDE_ADDRESS.v4]);
    must('ip', ['-n', pod, '-6', 'route', 'add', 'default', 'via', OUTSIDE_ADDRESS.v6]);
    mkdirSync(`/etc/netns/${pod}`, { recursive: true });
    writeFileSync(`/etc/netns/${pod}/hosts`, options.hosts);
    writeFileSync(`/etc/netns/${pod}/resolv.conf`, options.resolvConf);
  } catch (err) {
    network.remove();
    throw err;
  }
  return network;
}

/**
 * Runs a deployment's rules container in the pod: its very command and environment, as its user,
 * the image's paths (the script) taken from this checkout where the Dockerfile copies them from.
 */
export function applyRules(network: PodNetwork, rules: SidecarRules): Ran {
  const image = readDockerfile();
  const argv = rules.argv.map((a) => (a.startsWith(`${image.workdir}/`) ? checkoutPath(image, a) : a));
  const ran = network.run(rules.uid, argv, rules.env);
  if (ran.code !== 0) throw new Error(`${rules.argv.join(' ')}: ${ran.stderr.trim()}`);
  return ran;
}

/** Gives a folder and all in it to `uid` (its group too), as an image's chown or a volume's fsGroup does; symlinks themselves, never what they point at. */
export function chownTree(dir: string, uid: number): void {
  lchownSync(dir, uid, uid);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) lchownSync(join(entry.parentPath, entry.name), uid, uid);
}

export interface OutsideUpstream {
  /** Every request it saw, in order. */
  seen: Array<Pick<SeenRequest, 'method' | 'url' | 'headers'>>;
  close(): Promise<void>;
}

/** The test upstream (upstream.ts: trusted by the test CA, /echo and the rest) outside the pod, on HOST:PORT there. */
export async function startOutsideUpstream(network: PodNetwork, host: string, port: number): Promise<OutsideUpstream> {
  const child = network.spawnOutside([process.execPath, UPSTREAM_CHILD, host, String(port)]);
  const seen: OutsideUpstream['seen'] = [];
  let listening = false;
  let partial = '';
  let errors = '';
  child.stdout!.on('data', (c: Buffer) => {
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      const entry = JSON.parse(line) as { listening?: number } & OutsideUpstream['seen'][number];
      if (entry.listening !== undefined) listening = true;
      else seen.push(entry);
    }
  });
  child.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
  await waitFor(() => listening || undefined, `the upstream on ${host}:${port} outside the pod`, 15_000).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}: ${errors}`);
  });
  return {
    seen,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
