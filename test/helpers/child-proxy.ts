import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TLS_FIXTURES } from './fixtures.ts';
import { CLI_BIN, cliProgram, makeHome, TEST_HOSTS } from './keyway.ts';
import { freePort } from './ports.ts';
import { slack } from './load.ts';

export const DIST_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const SRC_CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface ChildProxy {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/**
 * `keyway start` as its own process, as a user runs it. Resolves once it says it is listening;
 * rejects with its stderr if it exits first.
 */
export async function startChildProxy(options: ChildOptions): Promise<ChildProxy> {
  // The free port is found first and bound by the child a moment later: a test running beside this
  // one may take it in between. Then the child says so and exits; another port is tried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, await freePort());
    } catch (err) {
      if (attempt >= 3 || !/the port is in use/.test((err as Error).message)) throw err;
    }
  }
}

interface ChildOptions {
  cli?: string;
  home: string;
  env: Record<string, string>;
  listenHost?: string;
  adminPort?: number;
  /** A command that runs keyway's command line (appended to it) in a changed setting: `unshare …`. */
  wrap?: string[];
  /** More options for `keyway start` (`--fresh-store`). */
  startArgs?: string[];
}

async function startOnce(options: ChildOptions, port: number): Promise<ChildProxy> {
  const keyway = [
    ...cliProgram(options.cli ?? CLI_BIN ?? SRC_CLI),
    'start',
    '--home',
    options.home,
    '--listen',
    `${options.listenHost ?? '127.0.0.1'}:${port}`,
    '--admin-listen',
    `127.0.0.1:${options.adminPort ?? 0}`,
    ...(options.startArgs ?? []),
  ];
  const [file, ...args] = [...(options.wrap ?? []), ...keyway] as [string, ...string[]];
  // A wrapper may run keyway as its child rather than exec it (dbus-run-session does, and starts a
  // bus and a keyring beside it): the wrapped command gets a process group of its own, and stop
  // ends the whole group, not only the wrapper, so nothing it started outlives the test.
  const grouped = options.wrap !== undefined;
  const child = spawn(file, args, { env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: grouped });
  // 'close': the wrapper has exited and every process holding its output (keyway's) has too.
  const closed = once(child, 'close').then(() => child.exitCode);
  const end = async (): Promise<number | null> => {
    // keyway itself is told first, as a user's Ctrl-C or service stop tells it (its workers are
    // its to stop); the group only where a wrapper stands between (its pid is not keyway's).
    const wrapped = grouped && !isKeyway(child.pid!, options.cli ?? CLI_BIN ?? SRC_CLI);
    const signal = (name: NodeJS.Signals) => {
      try {
        if (wrapped) process.kill(-child.pid!, name);
        else child.kill(name);
      } catch {
        // the group is gone already
      }
    };
    signal('SIGTERM');
    const late = setTimeout(() => signal('SIGKILL'), 15_000);
    let bound: NodeJS.Timeout | undefined;
    try {
      // Bounded: a process that keeps the output open past SIGKILL (it left the group) does not hang the test.
      return await Promise.race([closed, new Promise<number | null>((resolve) => (bound = setTimeout(() => resolve(child.exitCode), 20_000)))]);
    } finally {
      clearTimeout(late);
      clearTimeout(bound);
    }
  };
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((resolve, reject) => {
    // Waits on the start line; the limit is for a start that never comes: 15 s idle, stretched by the
    // measured load (a start from src/ on a busy 2-core machine has taken longer).
    const limitMs = slack(15_000, 60_000);
    const timer = setTimeout(() => reject(new Error(`keyway did not start in ${limitMs / 1000} s: ${err}`)), limitMs);
    const onData = () => {
      if (err.includes('keyway proxy on')) {
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        resolve();
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`keyway exited with ${code}: ${err}`));
    });
  }).catch(async (failed: unknown) => {
    // Nothing of a start that failed is left running (a wrapper's keyway, bus or keyring).
    await end();
    throw failed;
  });
  return {
    child,
    port,
    stdout: () => out,
    stderr: () => err,
    stop: end,
  };
}

/** Whether the process is keyway's command line (a wrapper that exec'd it), not a wrapper still standing. */
function isKeyway(pid: number, cli: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // The program itself (Node, or the single executable) first: a wrapper (dbus-run-session, sh -c)
    // names keyway's words among its own arguments, and is not keyway.
    const [program, ...rest] = cliProgram(cli);
    return argv[0] === program && rest.every((word) => argv.includes(word));
  } catch {
    return false; // gone, or no /proc: the group is told
  }
}

/**
 * A keyway home for `keyway start` as a child: config/keyway.yaml with the test settings (the test
 * upstream CA trusted, loopback allowed as a destination, the test host names on 127.0.0.1) and
 * `config` beside them.
 */
export function writeChildHome(config: Record<string, unknown>, hosts: readonly string[] = TEST_HOSTS): string {
  const home = makeHome();
  mkdirSync(join(home, 'config'), { recursive: true });
  const proxy = { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: Object.fromEntries(hosts.map((h) => [h, '127.0.0.1'])) };
  writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ proxy, ...config }));
  return home;
}
