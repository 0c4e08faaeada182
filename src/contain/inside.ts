// The first process inside `keyway run --contain`'s namespaces (a user namespace, so that nothing
// here holds a capability over the host's namespaces; a network namespace with nothing but loopback;
// a mount namespace). It makes keyway the only way out, hands keyway the listening socket every TCP
// connection is redirected to, answers DNS, and runs the command under bwrap (contain/sandbox.ts:
// its own PID namespace and user namespace, the host read-only, keyway's files hidden). Run by
// contain/run.ts under `unshare`; it talks to it over Node's IPC channel. It imports only small
// parts of its own: the sandbox's arguments, the overlay of what the command writes, the DNS answerer.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { answerDnsOverTcp, answerDnsQuery, PLACEHOLDER_ADDRESS } from '../net/placeholder-dns.ts';
import { isWithin } from './change-judge.ts';
import { type KeptChange, mountOverlays, type OverlayLayer, type RunRecord, settleOverlays } from './overlay.ts';
import { bwrapArguments, type PathKind, type SandboxPlan } from './sandbox.ts';
import { type DroppedWrites, droppedWrites, type ThrowawayHome, throwawayHome } from './throwaway-home.ts';

export interface ContainSpec {
  command: string[];
  env: Record<string, string>;
  /** The variables that name a CA file (SSL_CERT_FILE, …): set to the bundle's path inside. */
  caVariables: string[];
  /** System CAs and keyway's (PEM): mounted over the system bundle paths, so clients trust keyway with no setting. */
  bundlePem: string;
  /** The ports with a listener of their own (443, 80, the grants' and --port's); every other port shares one. */
  ports: number[];
  /** What the command sees of the host's files. */
  sandbox: SandboxPlan;
  /** contain/seccomp.ts's filter (base64). */
  seccomp: string;
}

/** What keyway says to inside.ts: the spec first (over IPC: the CA bundle is too long for a variable), then `ready`. */
export type KeywayMessage = { kind: 'spec'; spec: ContainSpec } | { kind: 'ready' };
/** What inside.ts says to keyway over the IPC channel; `listening` carries a listening socket. */
export type InsideMessage =
  | { kind: 'listening'; port: number | undefined; last: boolean; pid: number }
  | { kind: 'failed'; reason: string }
  | { kind: 'overlay'; scratch: string; record: RunRecord }
  | { kind: 'settled'; applied: number; kept: KeptChange[]; scratch: string; dropped?: DroppedWrites };

/** Where every name resolves inside (net/placeholder-dns.ts), reached only by the redirect. */
export const CONTAINED_ADDRESS = PLACEHOLDER_ADDRESS;
// Where programs look for the system's CA bundle (Debian and Ubuntu, Fedora and RHEL, Alpine and others).
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

function fail(reason: string): never {
  process.send?.({ kind: 'failed', reason });
  process.exit(2);
}

/**
 * The CA bundle inside is a private, read-only copy over the system bundle paths: a bind of keyway's
 * own bundle.pem let the command write into it (an agent's CA for later runs). The copy's file is
 * unlinked once mounted, so no path but the read-only mounts reaches it.
 */
function mountPrivateBundle(pem: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-contain-ca-'));
  const copy = join(dir, 'bundle.pem');
  const mounted: string[] = [];
  try {
    writeFileSync(copy, pem, { mode: 0o444 });
    for (const path of SYSTEM_BUNDLES) {
      if (!existsSync(path)) continue;
      run('mount', ['--bind', copy, path]);
      run('mount', ['-o', 'remount,bind,ro', path]);
      mounted.push(path);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (mounted.length === 0) fail(`no system CA bundle to put keyway's CA in (looked for ${SYSTEM_BUNDLES.join(', ')})`);
  return mounted[0]!;
}

/** What is at a path as this process reaches it (its uid is the command's on the host). */
function kindOf(path: string): PathKind {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined;
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The filter in a file bwrap reads from a descriptor; the file is unlinked at once. */
function filterDescriptor(filter: string): number {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-contain-seccomp-'));
  try {
    writeFileSync(join(dir, 'filter.bpf'), Buffer.from(filter, 'base64'));
    return openSync(join(dir, 'filter.bpf'), 'r');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], input?: string): void {
  try {
    execFileSync(command, args, { input, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '')
      .trim()
      .split('\n')[0];
    fail(`${command} ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

/**
 * The rules: DNS (UDP and TCP 53) to the answerer; every other TCP connection to keyway, by the port
 * dialled to that port's listener, else to the catch-all; loopback stays; the rest leads nowhere.
 * A packet of a redirected connection that reaches the filter hook untranslated (seen under load: a
 * bare ACK, still to the address dialled) is dropped, never sent on; TCP sends it again. A reset
 * would kill the connection keyway serves (deploy/transparent/redirect.nft, the same).
 */
function rules(listeners: ReadonlyMap<number, number>, catchAll: number, dns: number): string {
  const byPort = [...listeners].map(([port, local]) => `${port} : ${local}`).join(', ');
  return `table inet keyway {
  chain to_keyway {
    type nat hook output priority -100; policy accept;
    meta nfproto ipv4 udp dport 53 redirect to :${dns}
    meta nfproto ipv4 tcp dport 53 redirect to :${dns}
    ip daddr 127.0.0.0/8 return
    meta nfproto ipv4 meta l4proto tcp redirect to : tcp dport map { ${byPort} }
    meta nfproto ipv4 meta l4proto tcp redirect to :${catchAll}
  }
  chain leave {
    type filter hook output priority 0; policy drop;
    ip daddr 127.0.0.0/8 accept
    ip6 daddr ::1 accept
    ct status dnat drop
    meta l4proto tcp reject with tcp reset
  }
}
`;
}

function answerUdp(dns: ReturnType<typeof createSocket>, message: Buffer, from: RemoteInfo): void {
  const reply = answerDnsQuery(message, CONTAINED_ADDRESS);
  if (reply) dns.send(reply, from.port, from.address);
}

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** Hands a listening socket to keyway over the IPC channel; this process keeps no copy that could accept. */
async function handOver(server: Server, message: InsideMessage): Promise<void> {
  await new Promise<void>((resolve) => process.send!(message, server, () => resolve()));
  server.close();
}

async function nextMessage(): Promise<KeywayMessage> {
  return new Promise((resolve) => process.once('message', (message: KeywayMessage) => resolve(message)));
}

async function main(): Promise<void> {
  if (!process.send) fail('run by keyway run --contain only');
  // keyway gone (killed, crashed): nothing here outlives it.
  process.on('disconnect', () => process.exit(2));
  const first = await nextMessage();
  if (first.kind !== 'spec') fail('run by keyway run --contain only');
  const spec = first.spec;
  run('ip', ['link', 'set', 'lo', 'up']);
  // Every address routes to loopback, where only the redirect makes it go anywhere. With 127.0.0.1
  // as the source: with none (0.0.0.0), the kernel does not undo the redirect on the answers, and a
  // resolver drops an answer that comes from another address than it asked.
  run('ip', ['route', 'add', 'default', 'dev', 'lo', 'src', '127.0.0.1']);
  const listeners = new Map<number, number>();
  const servers = new Map<number | undefined, Server>();
  for (const port of spec.ports) {
    const server = createServer();
    listeners.set(port, await listening(server));
    servers.set(port, server);
  }
  const catchAll = createServer();
  const catchAllPort = await listening(catchAll);
  servers.set(undefined, catchAll);
  // UDP and TCP answerers on one port number.
  const dnsTcp = createServer((socket) => answerDnsOverTcp(socket, CONTAINED_ADDRESS));
  const dnsPort = await listening(dnsTcp);
  const dns = createSocket('udp4');
  dns.bind(dnsPort, '127.0.0.1');
  await once(dns, 'listening');
  dns.on('message', (message, from) => answerUdp(dns, message, from));
  run('nft', ['-f', '-'], rules(listeners, catchAllPort, dnsPort));
  const bundle = mountPrivateBundle(spec.bundlePem);
  const overlays = mountWritableOverlays(spec);
  // Where the command's writes go, said before it runs: keyway records it in its own home, the
  // one place `keyway contain review` trusts (contain/review.ts).
  await new Promise<void>((resolve) =>
    process.send!({ kind: 'overlay', scratch: overlays.scratch, record: overlays.record } satisfies InsideMessage, () => resolve()),
  );
  let left = servers.size;
  for (const [port, server] of servers) await handOver(server, { kind: 'listening', port, last: --left === 0, pid: process.pid });
  await nextMessage();
  const env = { ...spec.env };
  for (const name of spec.caVariables) env[name] = bundle;
  // bwrap's user namespace is a child of this one: the command holds no capability over the
  // namespaces the rules and the CA mounts live in (it cannot remove or unmount them), none in its
  // own either (bwrap drops them all and sets no-new-privs), and a setuid program gains nothing
  // (root is not mapped there).
  const home = makeThrowawayHome(spec.sandbox);
  // A path bwrap was to hide or bind that vanished between keyway's look and its mount (a socket
  // removed by its owner, another keyway's home being deleted) fails its setup, and nothing of the
  // command runs. To know which it was, a shell starts the command: once the sandbox is set up it
  // writes one byte to descriptor 4 and then becomes the command (exec), with 4 closed. No byte and
  // bwrap gone: the setup failed, so bwrap is started once more, the paths looked at again.
  const startSandbox = () => {
    const filter = filterDescriptor(spec.seccomp);
    const announce = 'printf . >&4 || exit 125; exec "$@" 4>&-';
    const args = [...bwrapArguments(spec.sandbox, kindOf, 3, isLink, home?.folder), '--', '/bin/sh', '-c', announce, 'sh', ...spec.command];
    const started = spawn('bwrap', args, { stdio: ['inherit', 'inherit', 'inherit', filter, 'pipe'], env });
    closeSync(filter);
    const setUp = { done: false };
    started.stdio[4]?.once('data', () => {
      setUp.done = true;
    });
    started.stdio[4]?.on('error', () => undefined);
    return { child: started, setUp };
  };
  let { child, setUp } = startSandbox();
  // The signals go to whichever bwrap runs now (the second, after a setup tried again).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  process.removeAllListeners('disconnect');
  process.on('disconnect', () => child.kill('SIGKILL'));
  const firstExit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined>((resolve) => {
    child.once('exit', (code, signal) => resolve(setUp.done ? undefined : { code, signal }));
    child.stdio[4]?.once('data', () => resolve(undefined));
    child.once('error', (err) => fail(`cannot run bwrap: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
  });
  if (firstExit !== undefined && !setUp.done) {
    process.stderr.write('keyway: the sandbox could not be set up (a path changed meanwhile); trying once more\n');
    ({ child, setUp } = startSandbox());
  }
  child.once('error', (err) => fail(`cannot run bwrap: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
  const exited = (callback: (code: number | null, signal: NodeJS.Signals | null) => void) => {
    if (child.exitCode !== null || child.signalCode !== null) callback(child.exitCode, child.signalCode);
    else child.once('exit', callback);
  };
  exited((code, signal) => {
    const exit = code ?? (signal ? 128 : 1);
    let settled: InsideMessage;
    try {
      const result = settleOverlays(overlays.scratch, overlays.layers, overlays.record, true, (layer) => {
        spawnSync('umount', ['-l', layer.root], { stdio: 'ignore' });
        spawnSync('umount', ['-l', layer.lower], { stdio: 'ignore' });
      });
      settled = { kind: 'settled', ...result, ...(home === undefined ? {} : { dropped: droppedWrites(home, spec.sandbox) }) };
    } catch (err) {
      settled = { kind: 'failed', reason: `the command's changes were not applied (${(err as Error).message}); they are in ${overlays.scratch}` };
    }
    if (home !== undefined) {
      spawnSync('umount', ['-l', home.folder], { stdio: 'ignore' });
      try {
        rmdirSync(home.folder);
      } catch {
        // Still mounted, or gone: an empty folder left in /tmp at worst.
      }
    }
    const leave = () => {
      // keyway may be gone already (killed, crashed): disconnecting twice throws, and the exit status would be lost.
      if (process.connected) process.disconnect?.();
      process.exit(exit);
    };
    if (process.connected) process.send?.(settled, leave);
    else leave();
  });
}

/** The command's HOME: an empty tmpfs of this namespace's, listed when the command exits (contain/throwaway-home.ts). */
function makeThrowawayHome(sandbox: SandboxPlan): ThrowawayHome | undefined {
  try {
    return throwawayHome(sandbox, (args) => run('mount', args));
  } catch (err) {
    fail(`an empty home for the command: ${(err as Error).message}`);
  }
}

/**
 * The working folder and each --allow-write folder, under an overlay (contain/overlay.ts): the
 * command's writes reach the host when it exits, judged. A folder inside another is covered by it.
 */
function mountWritableOverlays(spec: ContainSpec): { scratch: string; layers: OverlayLayer[]; record: RunRecord } {
  const folders = [spec.sandbox.workdir, ...spec.sandbox.writable].filter((path) => kindOf(path) === 'dir' && !isLink(path));
  const roots = [...new Set(folders)].filter((folder, _, all) => !all.some((other) => other !== folder && isWithin(folder, other)));
  try {
    const about = {
      workdir: spec.sandbox.workdir,
      homes: spec.sandbox.homes,
      pathFolders: spec.sandbox.pathFolders,
      relativePathEntries: spec.sandbox.relativePathEntries,
      gitConfigured: spec.sandbox.gitConfigured,
      homeLinked: spec.sandbox.homeLinked,
    };
    return mountOverlays(
      roots,
      about,
      (args) => {
        try {
          execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
        } catch (err) {
          const stderr = String((err as { stderr?: Buffer }).stderr ?? '')
            .trim()
            .split('\n')[0];
          throw new Error(`mount ${args.join(' ')}: ${stderr || (err as Error).message}`);
        }
      },
      (path) => spawnSync('umount', [path], { stdio: 'ignore' }),
    );
  } catch (err) {
    fail(`an overlay over the folders the command writes: ${(err as Error).message}`);
  }
}

void main();
