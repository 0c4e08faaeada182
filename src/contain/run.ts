import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startKeyway } from '../app/index.ts';
import type { Config } from '../config/index.ts';
import { missingSecretVariables } from '../config/secret-variables.ts';
import type { RedirectedPort } from '../proxy/transparent/listener.ts';
import { runningProxyFiles } from '../paths.ts';
import { findRunningProxy } from '../running-proxy.ts';
import type { CommandUser } from './command-user.ts';
import { type Door, openDoor } from './door-client.ts';
import { idmappedFolders } from './idmapped-folders.ts';
import type { ContainSpec, InsideMessage, KeywayMessage } from './inside.ts';
import { type KeptChange, runId } from './overlay.ts';
import { forgetRun, recordRun } from './review.ts';
import type { SandboxPlan } from './sandbox.ts';
import { closeInheritedDescriptors } from './inherited-descriptors.ts';
import { originalPortReader } from './original-port.ts';
import { containmentFilter, refusedSocketsNote } from './seccomp.ts';

// `keyway run --contain -- CMD`: CMD runs where keyway is the only way out. This process runs a
// keyway for it (the home's config, store and audit log, as `keyway fetch` does) and starts, under
// `unshare`, a user, network and mount namespace (contain/inside.ts) whose only interface is
// loopback: every TCP connection made there is redirected to a listening socket that inside.ts
// opens and hands to this keyway over Node's IPC channel (handles can be sent), so keyway accepts
// them from outside the namespace and dials the real hosts from here. Why this shape: it needs no
// addresses, no veth pair and no route to the host, and a command that removes the rules finds no
// way out at all. The user namespace means nothing inside holds a capability over the host's
// namespaces (no setns back out), whoever runs keyway. inside.ts then runs the command under bwrap
// (contain/sandbox.ts): a PID namespace of its own, the host's files read-only, keyway's hidden.

/** Why containment cannot run here, or undefined: it never falls back to running CMD uncontained. */
export function containUnavailable(user: CommandUser): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux's; this is ${process.platform}`;
  const asRoot = process.getuid?.() === 0;
  const programs: Array<[string, string]> = [
    ['unshare', 'unshare (util-linux) to make the namespaces'],
    ['ip', 'ip (iproute2) to bring up loopback inside'],
    ['nft', 'nft (nftables) for the redirect rules inside'],
    ['mount', 'mount (util-linux) to put the CA in the system bundle inside'],
    ['bwrap', "bwrap (bubblewrap) for the command's PID namespace and its view of the files"],
  ];
  if (asRoot)
    programs.push(
      ['setpriv', 'setpriv (util-linux) to run the command as an unprivileged user'],
      ['python3', 'python3 to keep the folder writable to the command when root owns it'],
    );
  if (containmentFilter({ unixSockets: false }) === undefined) return `keyway has no seccomp filter for ${process.arch} machines`;
  for (const [program, what] of programs) {
    if (spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0) return `${what} is not installed`;
  }
  // One try at what the kernel allows: a user namespace (with a network namespace in it) as the command's user.
  const probe = spawnSync('unshare', ['--user', '--map-root-user', '--net', 'true'], { encoding: 'utf8', ...(asRoot ? { uid: user.uid, gid: user.gid } : {}) });
  if (probe.status !== 0) {
    const reason = (probe.stderr ?? '').trim().split('\n')[0] || 'unshare failed';
    return `uid ${user.uid} may not create a user and network namespace (${reason}): allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or user.max_user_namespaces > 0)`;
  }
  return undefined;
}

export interface ContainOptions {
  config: Config;
  configFile: string | undefined;
  /** The agent the command is (undefined: the local agent, where no agents are configured). */
  agent: string | undefined;
  command: string[];
  /** TLS ports besides 443 with a listener of their own (the grants' ports, --port): TLS to any other port is refused. */
  ports: readonly number[];
  /** The command's environment, proxy variables excluded. */
  env: Record<string, string>;
  /** The variables that name the CA bundle (set inside to where it is mounted there). */
  caVariables: string[];
  /** Who the command is on the host, and what it sees of the host's files. */
  user: CommandUser;
  sandbox: SandboxPlan;
  /** Said in the audit log at start: the host sockets the command may reach (--allow-socket). */
  sockets: string[];
  /** keyway's own environment (the master key and the config's references). */
  keywayEnv: NodeJS.ProcessEnv;
  err(line: string): void;
}

/** Runs the command contained; resolves with its exit status (2 when containment failed to start). */
export async function runContained(options: ContainOptions): Promise<number> {
  const { config } = options;
  const running = await containedServer(options);
  try {
    const ports = [...new Set([443, 80, ...options.ports])];
    const bundle = join(config.home, 'certs', 'bundle.pem');
    if (!existsSync(bundle)) {
      options.err(`keyway: no CA bundle at ${bundle}: run \`keyway init\``);
      return 2;
    }
    const filter = containmentFilter({ unixSockets: options.sockets.length > 0 });
    if (filter === undefined) throw new Error(`no seccomp filter for ${process.arch}`);
    const spec: ContainSpec = {
      command: options.command,
      env: options.env,
      caVariables: options.caVariables,
      bundlePem: readFileSync(bundle, 'utf8'),
      ports,
      sandbox: options.sandbox,
      seccomp: filter.toString('base64'),
    };
    if (options.sockets.length > 0) await running.auditContainStart(options.agent, options.sockets);
    // What the launcher left open goes no further than this process (contain/inherited-descriptors.ts).
    closeInheritedDescriptors(ipcDescriptor());
    const child = spawn(...containChain(options.user, options.sandbox), {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    child.send({ kind: 'spec', spec } satisfies KeywayMessage);
    let started = false;
    let failedInside = false;
    child.on('message', (message: InsideMessage, handle: unknown) => {
      if (message.kind === 'listening' && handle) {
        // The catch-all reads the port each connection was dialled to from this namespace's conntrack table, to name it in a refusal.
        const dialled = message.port === undefined ? originalPortReader(message.pid) : undefined;
        running.acceptRedirected(handle as Server, options.agent, { port: message.port ?? undefined, served: ports, ...(dialled ? { dialled } : {}) });
        if (!message.last) return;
        started = true;
        child.send({ kind: 'ready' } satisfies KeywayMessage);
      } else if (message.kind === 'failed') {
        failedInside = true;
        options.err(`keyway: contain_unavailable: ${message.reason}`);
      } else if (message.kind === 'overlay') recordRun(config.home, message.scratch, message.record);
      else if (message.kind === 'settled') {
        if (message.kept.length === 0) forgetRun(config.home, message.scratch);
        for (const line of settledReport(message)) options.err(line);
      }
    });
    let stopped = false;
    const forward = (signal: NodeJS.Signals) => {
      stopped = true;
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      const code = await new Promise<number>((resolve) => {
        child.once('error', (err) => {
          options.err(`keyway: contain_unavailable: cannot run unshare (${(err as NodeJS.ErrnoException).code ?? err.message})`);
          resolve(2);
        });
        child.once('exit', (exit, signal) => resolve(exit ?? (signal ? 128 : 1)));
      });
      if (!started) return 2;
      // A program that needs a socket the filter refuses dies with a bare EPERM: keyway says which it refuses (not after a Ctrl-C).
      if (code !== 0 && !failedInside && !stopped)
        options.err(`keyway: CMD exited with status ${code}; ${refusedSocketsNote({ unixSockets: options.sockets.length > 0 })}`);
      return code;
    } finally {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    }
  } finally {
    await running.stop();
  }
}

/** What the run's exit says of the command's changes: nothing when all reached the host. */
export function settledReport(settled: { applied: number; kept: readonly KeptChange[]; scratch: string }): string[] {
  if (settled.kept.length === 0) return [];
  const id = runId(settled.scratch);
  const lines = [
    `keyway: kept aside ${settled.kept.length} of the command's changes, which could run later outside (the rest, ${settled.applied}, are in place):`,
  ];
  for (const k of settled.kept.slice(0, 10)) lines.push(`keyway:   ${k.kind === 'deleted' ? 'deleted ' : ''}${join(k.root, k.rel)}: ${k.why}`);
  if (settled.kept.length > 10) lines.push(`keyway:   … and ${settled.kept.length - 10} more`);
  lines.push(`keyway: review them with \`keyway contain review ${id}\`; put them in place with \`keyway contain review ${id} --apply\``);
  return lines;
}

/** This process's own IPC channel, if it was started with one: kept open. */
function ipcDescriptor(): number[] {
  const fd = (process.channel as { fd?: unknown } | undefined)?.fd;
  return typeof fd === 'number' ? [fd] : [];
}

/** What serves the contained command: a keyway of this run's own, joined to the running one where there is one. */
interface ContainedServer {
  acceptRedirected(handle: Server, agent: string | undefined, ports: RedirectedPort): void;
  auditContainStart(agent: string | undefined, sockets: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A keyway of this run's own serves the command's connections directly (a relay through the
 * running keyway cost 19% of s1's latency). Where a keyway runs for the home, its contain door
 * (contain/door-client.ts) makes this one the same agent as there: the config's env: secrets
 * (and the master key) come from it, so the agent's shell needs none, every rate is taken from its
 * buckets and every refusal counted by its refusal budget (quotas are the store's, shared already). Where none runs, this keyway reads the
 * secrets from this process's environment, as `keyway fetch` does.
 */
async function containedServer(options: ContainOptions): Promise<ContainedServer> {
  const record = findRunningProxy(runningProxyFiles(options.config.home).runningProxy);
  const door = record?.door === undefined ? undefined : await openDoor(record.door);
  let env = options.keywayEnv;
  let joined: Awaited<ReturnType<Door['join']>> | undefined;
  if (door !== undefined) {
    const missing = [...missingSecretVariables(options.config, env), ...((env['KEYWAY_MASTER_KEY'] ?? '').trim() === '' ? ['KEYWAY_MASTER_KEY'] : [])];
    env = { ...env, ...(await door.secrets(missing)) };
    joined = await door.join();
  }
  try {
    const own = await startKeyway({
      home: options.config.home,
      configFile: options.configFile,
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      env,
      logger: pino({ level: 'error' }, pino.destination(2)),
      announce: 'contain',
      rates: joined?.counter,
      refusals: joined?.refusals,
    });
    return {
      acceptRedirected: (handle, agent, ports) => own.acceptRedirected(handle, agent, ports),
      auditContainStart: (agent, sockets) => (door === undefined ? own.auditContainStart(agent, sockets) : door.auditContainStart(agent, sockets)),
      stop: async () => {
        await own.stop({ drainMs: 2_000 });
        joined?.close();
      },
    };
  } catch (err) {
    joined?.close();
    throw err;
  }
}

/**
 * The programs that set up the namespaces, first to last. As the user: unshare, then inside.ts.
 * As root: first a mount namespace of root's own where the folders the command writes, if root
 * owns them, are idmapped to its uid (contain/idmapped-folders.ts); then setpriv drops to that
 * uid, so the user namespace, and all that runs in it, is that uid's and never root's.
 */
function containChain(user: CommandUser, sandbox: SandboxPlan): [string, string[]] {
  const inside = fileURLToPath(new URL(`./inside${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const namespaces = ['unshare', '--user', '--map-root-user', '--net', '--mount', '--fork', '--kill-child', process.execPath, inside];
  if (process.getuid?.() !== 0) return [namespaces[0]!, namespaces.slice(1)];
  const writable = [sandbox.workdir, ...sandbox.writable].filter((folder) => statSync(folder).uid === 0);
  const passed = closedAncestors([sandbox.workdir, ...sandbox.writable, ...sandbox.sockets, process.execPath, inside], user);
  const drop = ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', ...namespaces];
  return ['unshare', ['--mount', '--propagation', 'private', '--', ...idmappedFolders(user.uid, user.gid, [...writable, ...passed], drop)]];
}

/**
 * The folders above `paths` that root owns and `user` may not pass through (no search permission
 * for it), deepest first: idmapped so that it can (contain/idmapped-folders.ts).
 */
export function closedAncestors(paths: readonly string[], user: { uid: number; gid: number }): string[] {
  const closed = new Set<string>();
  for (const path of paths) {
    for (let dir = dirname(path); dir !== '/' && dir !== '.'; dir = dirname(dir)) {
      const { uid, gid, mode } = statSync(dir);
      const searchable = mode & 0o001 || (uid === user.uid && mode & 0o100) || (gid === user.gid && mode & 0o010);
      if (!searchable && uid === 0) closed.add(dir);
    }
  }
  return [...closed].sort((a, b) => b.length - a.length);
}
