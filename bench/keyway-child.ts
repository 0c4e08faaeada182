// keyway under test, run as a child process (`node src/cli/main.ts start`) so that its memory can be
// read apart from the benchmark client's, and so it has its own event loop like a real deployment.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { PROXY_ENV, PROXY_NODE_FLAGS, RUNTIME_VARIABLE } from '../src/cli/proxy-runtime.ts';
import { CLI, cleanEnv, runProcess } from '../test/helpers/keyway.ts';
import { type InspectorClient, inspectorOf, inspectorUrls } from './inspector.ts';
import { type MemoryReading, readMemory } from './proc.ts';

export { type MemoryReading, readMemory } from './proc.ts';
import { freePort } from '../test/helpers/ports.ts';

export interface KeywayChildOptions {
  /** Host names keyway maps to 127.0.0.1 (proxy.hosts). */
  hosts: readonly string[];
  /** The grant's domain patterns, e.g. ['*.bench.test']. */
  domains: readonly string[];
  /** The bearer token stored in the grant (given to the CLI on stdin). */
  secret: string;
  /** CA files keyway trusts for upstreams. */
  upstreamCa: readonly string[];
  /** Write a V8 CPU profile of the child into this folder (node --cpu-prof). */
  cpuProfileDir?: string | undefined;
  /** Extra node options for the child, e.g. --max-old-space-size=96. */
  nodeArgs?: readonly string[] | undefined;
  /** Extra environment for the child (e.g. MALLOC_ARENA_MAX). */
  env?: Record<string, string> | undefined;
  /** The CLI entry to run: src/cli/main.ts (default) or a built dist/cli/main.js. */
  cli?: string | undefined;
  /** More top-level config sections (e.g. providers, oauth), written beside proxy and admin. */
  config?: Record<string, unknown> | undefined;
  /**
   * A command to run keyway under (heaptrack, valgrind), prefixed to node. keyway's own re-execution
   * with its runtime settings is turned off and the settings are given on the command line instead,
   * so the wrapper sees one process; `pid` is then keyway's, read from data/proxy.json.
   */
  wrapper?: readonly string[] | undefined;
  /** Open the inspector on a free loopback port (--inspect=127.0.0.1:0) for bench/run.ts --profile. */
  inspect?: boolean | undefined;
  /** proxy.workers: processes serving the proxy (default 1). */
  workers?: number | undefined;
  /** Files written into the home before start, by path inside it (e.g. `policies/bench.cedar`), each 0600. */
  homeFiles?: Readonly<Record<string, string>> | undefined;
  /** More CLI commands to run on the home before start, after the bench grant is added (--home is appended). */
  setup?: ReadonlyArray<{ args: readonly string[]; stdin?: string | undefined }> | undefined;
}

export interface KeywayChild {
  pid: number;
  url: string;
  port: number;
  home: string;
  /** The master key it runs with (a second keyway of the same home needs it: bench/contain.ts). */
  masterKey: string;
  /** keyway's own CA, which the proxied client must trust. */
  caPem: string;
  memory(): MemoryReading;
  /** The node options and allocator variables the child runs under, read from /proc (after its re-exec). */
  runtime(): string;
  /** Last lines the child wrote, for error reports. */
  output(): string;
  /** A protocol connection to the child's inspector (only when started with `inspect`). */
  inspector(): Promise<InspectorClient>;
  stop(): Promise<void>;
}

// A bound that catches a start that hangs (one that fails exits at once with its reason): on a busy
// machine (the soak test inside npm test, beside other work) a start takes well past 20 s.
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

export async function startKeywayChild(options: KeywayChildOptions): Promise<KeywayChild> {
  const home = mkdtempSync(join(tmpdir(), 'keyway-bench-'));
  try {
    const env = cleanEnv({ ...options.env, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') });
    const port = await freePort();
    const { proxy: proxyMore, admin: adminMore, ...sections } = options.config ?? {};
    const config = {
      proxy: {
        listen: `127.0.0.1:${port}`,
        upstream_ca: [...options.upstreamCa],
        allow_networks: ['127.0.0.0/8'], // the bench upstream is on loopback, refused by default
        hosts: Object.fromEntries(options.hosts.map((h) => [h, '127.0.0.1'])),
        ...(options.workers === undefined ? {} : { workers: options.workers }),
        ...(proxyMore as Record<string, unknown> | undefined),
      },
      admin: { enabled: false, ...(adminMore as Record<string, unknown> | undefined) },
      ...sections,
    };
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(config));
    for (const [path, text] of Object.entries(options.homeFiles ?? {})) {
      mkdirSync(dirname(join(home, path)), { recursive: true, mode: 0o700 });
      writeFileSync(join(home, path), text, { mode: 0o600 });
    }

    // The grant goes into the encrypted store through the real CLI, as a user would add it.
    const added = await runProcess(
      process.execPath,
      [CLI, 'grants', 'add', 'bench', '--type', 'bearer', '--domains', options.domains.join(','), '--secret-stdin', '--home', home],
      env,
      options.secret,
      30_000,
    );
    if (added.code !== 0) throw new Error(`keyway grants add failed (${added.code}): ${added.stderr.trim()}`);
    for (const step of options.setup ?? []) {
      const ran = await runProcess(process.execPath, [CLI, ...step.args, '--home', home], env, step.stdin ?? '', 30_000);
      if (ran.code !== 0) throw new Error(`keyway ${step.args.slice(0, 2).join(' ')} failed (${ran.code}): ${ran.stderr.trim()}`);
    }

    const nodeArgs = [
      ...(options.nodeArgs ?? []),
      ...(options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : []),
      ...(options.inspect ? ['--inspect=127.0.0.1:0'] : []),
    ];
    const startArgs = [options.cli ?? CLI, 'start', '--home', home, '--listen', `127.0.0.1:${port}`];
    const wrapper = options.wrapper ?? [];
    const child =
      wrapper.length === 0
        ? spawn(process.execPath, [...nodeArgs, ...startArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(wrapper[0] as string, [...wrapper.slice(1), process.execPath, ...PROXY_NODE_FLAGS, ...nodeArgs, ...startArgs], {
            env: { ...PROXY_ENV, ...env, [RUNTIME_VARIABLE]: 'as-is' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    const tail: string[] = [];
    // Every inspector URL printed (the first process's, then the re-executed one's), kept apart from the tail.
    const inspectors: string[] = [];
    const keep = (chunk: Buffer) => {
      inspectors.push(...inspectorUrls(chunk.toString('utf8')));
      tail.push(chunk.toString('utf8'));
      if (tail.length > 200) tail.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await waitForStart(child, tail);
    // Under a wrapper the spawned process is the wrapper; keyway says its own pid in data/proxy.json.
    const pid = wrapper.length === 0 ? child.pid : (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { pid: number }).pid;
    if (pid === undefined) throw new Error('keyway child has no pid');

    return {
      pid,
      port,
      url: `http://127.0.0.1:${port}`,
      home,
      masterKey: env['KEYWAY_MASTER_KEY']!,
      caPem: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8'),
      memory: () => readMemory(pid),
      runtime: () => readRuntime(pid),
      output: () => tail.join('').split('\n').slice(-30).join('\n'),
      inspector: () => inspectorOf(pid, inspectors),
      stop: async () => {
        await stopChild(child, pid);
        rmSync(home, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
}

/** A port that was free a moment ago (bind to 0, read it, close). */
function waitForStart(child: ChildProcess, tail: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`keyway did not start within ${START_TIMEOUT_MS} ms:\n${tail.join('')}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      if (chunk.toString('utf8').includes('keyway proxy on ') || tail.join('').includes('keyway proxy on ')) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`keyway exited during start (code ${code}, signal ${signal}):\n${tail.join('')}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** SIGTERM (keyway closes cleanly, and a CPU profile gets written), SIGKILL if it hangs. */
/** Stops keyway (`pid`: itself, when a wrapper such as heaptrack, which does not pass signals on, is `child`). */
async function stopChild(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  const wrapped = pid !== child.pid;
  const signal = (name: NodeJS.Signals, wrapperToo: boolean) => {
    try {
      if (wrapped) process.kill(pid, name);
    } catch {
      // Already gone.
    }
    if (!wrapped || wrapperToo) child.kill(name);
  };
  // A wrapper is left to finish on its own once keyway exits (heaptrack then writes its file).
  signal('SIGTERM', false);
  const timer = setTimeout(() => signal('SIGKILL', true), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function readRuntime(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const script = argv.findIndex((a) => /cli[/\\]main\.[jt]s$/.test(a));
    const args = argv.slice(1, script === -1 ? undefined : script);
    const vars = readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((v) => /^(MALLOC_|KEYWAY_RUNTIME=)/.test(v));
    return [...args, ...vars].join(' ') || '(node defaults)';
  } catch {
    return '(unknown: no /proc)';
  }
}

/**
 * This process's KEYWAY_RUNTIME and MALLOC_* (glibc) variables, passed through to the keyway child so
 * runtime settings can be compared without editing code: `MALLOC_MMAP_THRESHOLD_=32768 npm run soak`.
 * The child keeps a MALLOC_* it is given over its own defaults (src/cli/proxy-runtime.ts).
 */
export function tuningEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => (e[0].startsWith('MALLOC_') || e[0] === 'KEYWAY_RUNTIME') && e[1] !== undefined),
  );
}
