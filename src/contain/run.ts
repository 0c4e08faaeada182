import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ownChildCommand, ownChildFile } from '../process/own-program.ts';
import type { Config } from '../config/index.ts';
import type { CommandUser } from './command-user.ts';
import { type ContainedServer, containedServer } from './contained-server.ts';
import { idmappedFolders } from './idmapped-folders.ts';
import { hearChain } from './chain-messages.ts';
import type { ContainSpec } from './inside.ts';
import type { SandboxPlan } from './sandbox.ts';
import { closeInheritedDescriptors } from './inherited-descriptors.ts';
import { onPath } from './programs.ts';
import { containmentFilter, refusedSocketsNote } from './seccomp.ts';

export { settledReport } from './settled-report.ts';

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
    if (!onPath(program, process.env['PATH'])) return `${what} is not installed`;
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
  // What the launcher left open goes no further than this process (contain/inherited-descriptors.ts).
  closeInheritedDescriptors(ipcDescriptor());
  // The chain starts first and sets up the namespaces while this process starts its keyway; the
  // command runs only after `ready`, once that keyway serves (contain/chain-messages.ts).
  const child = spawn(...containChain(options.user, options.sandbox), {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  let exitCode: number | undefined;
  const exited = new Promise<number>((resolve) => {
    const end = (code: number) => {
      exitCode = code;
      resolve(code);
    };
    child.once('error', (err) => {
      options.err(`keyway: contain_unavailable: cannot run unshare (${(err as NodeJS.ErrnoException).code ?? err.message})`);
      end(2);
    });
    child.once('exit', (exit, signal) => end(exit ?? (signal ? 128 : 1)));
  });
  const chain = hearChain(child, spec, { home: config.home, agent: options.agent, err: options.err });
  let stopped = false;
  const forward = (signal: NodeJS.Signals) => {
    stopped = true;
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    let running: ContainedServer;
    try {
      running = await containedServer(options);
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      chain.discard();
      throw err;
    }
    try {
      // Gone already (a signal, a failure inside, unshare missing): the command never ran.
      if (exitCode !== undefined || !child.connected) return 2;
      if (options.sockets.length > 0) await running.auditContainStart(options.agent, options.sockets);
      chain.serveWith(running);
      const code = await exited;
      if (!chain.started) return 2;
      // The command ran, but its changes were not settled (said on stderr, with where they are): never a silent 0.
      if (chain.failedInside && code === 0) return 2;
      // A program that needs a socket the filter refuses dies with a bare EPERM: keyway says which it refuses (not after a Ctrl-C).
      if (code !== 0 && !chain.failedInside && !stopped)
        options.err(`keyway: CMD exited with status ${code}; ${refusedSocketsNote({ unixSockets: options.sockets.length > 0 })}`);
      return code;
    } finally {
      await running.stop();
    }
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}

/** This process's own IPC channel, if it was started with one: kept open. */
function ipcDescriptor(): number[] {
  const fd = (process.channel as { fd?: unknown } | undefined)?.fd;
  return typeof fd === 'number' ? [fd] : [];
}

/**
 * The programs that set up the namespaces, first to last. As the user: unshare, then inside.ts.
 * As root: first a mount namespace of root's own where the folders the command writes, if root
 * owns them, are idmapped to its uid (contain/idmapped-folders.ts); then setpriv drops to that
 * uid, so the user namespace, and all that runs in it, is that uid's and never root's.
 */
function containChain(user: CommandUser, sandbox: SandboxPlan): [string, string[]] {
  const insideUrl = new URL(`./inside${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const inside = ownChildFile(insideUrl);
  const namespaces = ['unshare', '--user', '--map-root-user', '--net', '--mount', '--fork', '--kill-child', ...ownChildCommand(insideUrl, 'contain/inside')];
  if (process.getuid?.() !== 0) return [namespaces[0]!, namespaces.slice(1)];
  // The profile's kept state (in keyway's home, root's) is written by the command as the working folder is.
  const states = sandbox.state.map((s) => s.source);
  const writable = [sandbox.workdir, ...sandbox.writable, ...states].filter((folder) => statSync(folder).uid === 0);
  const passed = closedAncestors([sandbox.workdir, ...sandbox.writable, ...states, ...sandbox.sockets, process.execPath, inside], user);
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
