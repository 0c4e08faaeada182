// squid (Debian's squid-openssl) as a same-run peer for `npm run bench`: an intercepting proxy that
// does the same work as keyway (CONNECT, TLS both ways with a leaf it mints per host, a header
// added upstream) and is what users compare keyway with. It runs as a child process in the
// foreground (-N) with its own config, CA, certificate database, logs and pid file in a temp folder;
// no system service is touched. Names resolve through its own hosts file to 127.0.0.1 only.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createCaPem } from '../src/tls/ca-create.ts';
import { freePort } from '../test/helpers/ports.ts';
import { isZombie, processTree, processTreeCpuMs, processTreeMemory, type MemoryReading } from './proc.ts';

const CERTGEN = '/usr/lib/squid/security_file_certgen';

/** Debian's path, or KEYWAY_BENCH_SQUID for a squid (built with ssl-bump) installed elsewhere. */
export function squidBinary(): string {
  return process.env['KEYWAY_BENCH_SQUID'] || '/usr/sbin/squid';
}

/** The one line the bench prints when it runs without squid. */
export function squidMissing(binary: string = squidBinary()): string {
  return `squid peer skipped: ${binary} (squid with ssl-bump) is not installed; \`apt-get install squid-openssl\` adds it`;
}
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export interface SquidChildOptions {
  /** Host names squid maps to 127.0.0.1 (its hosts_file). */
  hosts: readonly string[];
  /** The header squid adds to requests for these domains (squid dstdomain syntax: `.bench.test`). */
  injectDomains: readonly string[];
  secret: string;
  /** The CA file squid trusts for upstreams. */
  upstreamCaPath: string;
  binary?: string | undefined;
  /** squid's SMP mode (`workers N`): N kid processes share the port. Default 1 (no kids). */
  workers?: number | undefined;
}

export interface SquidChild {
  pid: number;
  url: string;
  /** Its config, CA key, certificate database and logs; removed by stop(). */
  dir: string;
  /** squid's generated CA, which the proxied client must trust. */
  caPem: string;
  version: string;
  /** squid and its helpers (certificate generator): CPU time so far, and memory now. */
  cpuMs(): number;
  memory(): MemoryReading;
  output(): string;
  stop(): Promise<void>;
  /** For a run that must end now (watchdog, Ctrl-C): SIGKILL squid and its helpers, by pid. */
  killNow(): void;
}

/** True when the ssl-bump build of squid and its certificate helper are here. */
export function squidAvailable(binary: string = squidBinary()): boolean {
  return existsSync(binary) && existsSync(CERTGEN);
}

export async function startSquidChild(options: SquidChildOptions): Promise<SquidChild> {
  const binary = options.binary ?? squidBinary();
  const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-squid-'));
  try {
    const port = await freePort();
    const ca = await createCaPem();
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'hosts'), `${options.hosts.map((h) => `127.0.0.1 ${h}`).join('\n')}\n`);
    writeFileSync(join(dir, 'squid.conf'), squidConfig(dir, port, options), { mode: 0o600 });
    execFileSync(CERTGEN, ['-c', '-s', join(dir, 'ssl_db'), '-M', '16MB'], { stdio: 'ignore', timeout: 10_000 });
    // Started as root, squid drops to the `proxy` user, which must own its state.
    if (userInfo().uid === 0) chownTree(dir, 'proxy');

    // -N keeps squid in one process; SMP needs its master to fork the kids, in the foreground.
    const mode = (options.workers ?? 1) > 1 ? '--foreground' : '-N';
    const child = spawn(binary, [mode, '-f', join(dir, 'squid.conf')], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/bin' } });
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      tail.push(chunk.toString('utf8'));
      if (tail.length > 100) tail.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const output = () => [...tail, readLog(dir)].join('').split('\n').slice(-30).join('\n');
    await waitForPort(child, port, output);
    const pid = child.pid as number;
    return {
      pid,
      url: `http://127.0.0.1:${port}`,
      dir,
      caPem: ca.certPem,
      version: squidVersion(binary),
      cpuMs: () => processTreeCpuMs(pid),
      memory: () => processTreeMemory(pid),
      output,
      killNow: () => {
        for (const p of processTree(pid).reverse()) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // Gone already.
          }
        }
        rmSync(dir, { recursive: true, force: true });
      },
      stop: async () => {
        const helpers = processTree(pid).filter((p) => p !== pid);
        await stopChild(child);
        await reapHelpers(helpers);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function squidConfig(dir: string, port: number, o: SquidChildOptions): string {
  const at = (name: string) => join(dir, name);
  return [
    `http_port 127.0.0.1:${port} ssl-bump tls-cert=${at('ca.pem')} tls-key=${at('ca.key')} generate-host-certificates=on dynamic_cert_mem_cache_size=16MB`,
    `sslcrtd_program ${CERTGEN} -s ${at('ssl_db')} -M 16MB`,
    'sslcrtd_children 4 startup=1 idle=1',
    ...((o.workers ?? 1) > 1 ? [`workers ${o.workers}`] : []),
    'acl step1 at_step SslBump1',
    'ssl_bump peek step1',
    'ssl_bump bump all',
    `tls_outgoing_options cafile=${o.upstreamCaPath}`,
    // The work keyway does: the credential on every request to the granted domains.
    `acl granted dstdomain ${o.injectDomains.join(' ')}`,
    `request_header_add Authorization "Bearer ${o.secret}" granted`,
    // keyway adds no Via or X-Forwarded-For; neither should the peer it is compared with.
    'via off',
    'forwarded_for delete',
    'http_access allow localhost',
    'http_access deny all',
    // A forwarder, not a cache: keyway caches nothing either.
    'cache deny all',
    'cache_mem 0 MB',
    // Loopback only: names come from this hosts file; anything else asks a resolver that is not there.
    `hosts_file ${at('hosts')}`,
    'dns_nameservers 127.0.0.1',
    'dns_timeout 2 seconds',
    // Its ICMP pinger sends probes to the servers it talks to, and outlives squid's own exit.
    'pinger_enable off',
    'access_log none',
    'cache_store_log none',
    `cache_log ${at('cache.log')}`,
    `pid_filename ${at('squid.pid')}`,
    `coredump_dir ${dir}`,
    'netdb_filename none',
    'shutdown_lifetime 0 seconds',
    '',
  ].join('\n');
}

export function chownTree(dir: string, user: string): void {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  chownSync(dir, uid, gid);
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) chownSync(join(dir, entry), uid, gid);
}

function squidVersion(binary: string): string {
  try {
    return /Version (\S+)/.exec(execFileSync(binary, ['-v'], { encoding: 'utf8', timeout: 5000 }))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function readLog(dir: string): string {
  try {
    return execFileSync('tail', ['-n', '20', join(dir, 'cache.log')], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/** squid logs "Accepting ... connections" before it listens on every port; a TCP connect is the real test. */
export async function waitForPort(child: ChildProcess, port: number, output: () => string): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < START_TIMEOUT_MS) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`squid exited during start:\n${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      socket.setTimeout(1000, () => done(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`squid did not listen within ${START_TIMEOUT_MS} ms:\n${output()}`);
}

/**
 * squid's helpers (the certificate generator) exit when squid closes their stdin; a squid that had
 * to be killed may leave them a moment longer. Waits for them, then kills any left, by pid.
 */
async function reapHelpers(pids: readonly number[]): Promise<void> {
  const alive = () => pids.filter((p) => existsSync(`/proc/${p}`) && !isZombie(p));
  const until = Date.now() + STOP_TIMEOUT_MS / 2;
  while (alive().length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  for (const p of alive()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
