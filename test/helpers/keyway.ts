import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startKeyway, type RunningKeyway } from '../../src/app/index.ts';
import { createAppLogger } from '../../src/log/logger.ts';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { TLS_FIXTURES } from './fixtures.ts';
import { slack } from './load.ts';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/**
 * KEYWAY_CLI_BIN=release/keyway-linux-x64 (`npm run release -- --only=linux-x64` builds it) runs the
 * suites that use runCli, startChildProxy and cliCommand against the single executable instead of src/ (issue 91):
 * `KEYWAY_CLI_BIN=release/keyway-linux-x64 npx vitest run test/integration/first-run.test.ts`.
 * `npm run test:cli-bin` runs the CLI suites that way (scripts/cli-suites.mjs; CI does after npm test).
 */
export const CLI_BIN = process.env['KEYWAY_CLI_BIN'] ? resolve(process.env['KEYWAY_CLI_BIN']) : undefined;

/** The program and first arguments that run keyway's CLI `cli`: Node and the script, or an executable (no .js/.ts) alone. */
export function cliProgram(cli: string = CLI_BIN ?? CLI): [string, ...string[]] {
  return /\.(js|ts)$/.test(cli) ? [process.execPath, cli] : [cli];
}

/**
 * keyway's command line with `args`, as spawn and runProcess take it: [Node, [src/cli/main.ts, ...args]],
 * or under KEYWAY_CLI_BIN [the executable, args]. A test that starts keyway itself goes through this
 * (or runCli, startChildProxy), so the CLI suites run against the single executable unchanged.
 */
export function cliCommand(args: readonly string[], cli?: string): [string, string[]] {
  const [program, ...first] = cliProgram(cli);
  return [program, [...first, ...args]];
}

/** The same, as one line for a shell (sh -c, script -c): each word single-quoted. */
export function cliShellLine(args: readonly string[]): string {
  const [program, rest] = cliCommand(args);
  return [program, ...rest].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(' ');
}

export interface TestGrant {
  id: string;
  type: StoredGrant['type'];
  domains: string[];
  secret?: StoredGrant['secret'];
  inject?: StoredGrant['inject'];
  allow_http?: boolean;
  allow_range?: boolean;
  status?: StoredGrant['status'];
  provider?: StoredGrant['provider'];
  /** How often a 401 may renew its token (the types that renew on one). */
  renew_floor?: string;
}

export interface ProxyOptions {
  /** Extra config, merged over the test defaults (listen on port 0, test hosts, test CA). */
  config?: Record<string, unknown>;
  /** Grants written to the store before start. */
  grants?: TestGrant[];
  /** Extra environment for the proxy (env: references). */
  env?: Record<string, string>;
  /** Reuse a home folder (a second process on one store). */
  home?: string;
  /** A pinned clock for policy (time windows, leases). */
  now?: () => Date;
  /** The clock for OAuth token expiry and refresh backoff: move it forward instead of sleeping. */
  tokenClock?: () => number;
  /** A scripted resolver in place of the system's (after proxy.hosts). */
  dns?: (host: string) => Promise<{ address: string; family: 4 | 6 }>;
}

export interface TestProxy {
  home: string;
  port: number;
  url: string;
  caPath: string;
  bundlePath: string;
  auditPath: string;
  env: Record<string, string>;
  running: RunningKeyway;
  /** Everything the app logger wrote. */
  logs: string[];
  auditLines(): Array<Record<string, unknown>>;
  /** Runs the real CLI in a child process against this home. */
  cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export const TEST_HOSTS = ['api.example.test', 'other.example.test', 'tunnel.example.test', 'bad.example.test', 'plain.example.test', 'slow.example.test'];

export function makeHome(): string {
  return mkdtempSync(join(tmpdir(), 'keyway-test-'));
}

export async function startProxy(options: ProxyOptions = {}): Promise<TestProxy> {
  const home = options.home ?? makeHome();
  const masterKey = readOrMakeMasterKey(home);
  const env: Record<string, string> = { KEYWAY_MASTER_KEY: masterKey, ...options.env };
  const config = {
    proxy: {
      listen: '127.0.0.1:0',
      upstream_ca: [TLS_FIXTURES.caPath],
      // Test upstreams live on loopback, which keyway refuses by default.
      allow_networks: ['127.0.0.0/8'],
      hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
      ...(options.config?.['proxy'] as object | undefined),
    },
    admin: { listen: '127.0.0.1:0', ...(options.config?.['admin'] as object | undefined) },
    ...Object.fromEntries(Object.entries(options.config ?? {}).filter(([k]) => k !== 'proxy' && k !== 'admin')),
  };
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(join(home, 'config', 'keyway.yaml'), stringify(config));
  if (options.grants?.length) await seedGrants(home, masterKey, options.grants);

  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const running = await startKeyway({
    home,
    env: { ...process.env, ...env },
    dns: options.dns,
    now: options.now,
    tokenClock: options.tokenClock,
    logger: createAppLogger({ level: 'debug', destination: sink }),
  });
  const port = running.proxyAddress.port;
  const auditPath = running.services.paths.audit;
  return {
    home,
    port,
    url: `http://127.0.0.1:${port}`,
    caPath: running.ca.certPath,
    bundlePath: running.ca.bundlePath,
    auditPath,
    env,
    running,
    logs,
    auditLines: () => (existsSync(auditPath) ? onePerRequest(readFileSync(auditPath, 'utf8')) : []),
    cli: (args, stdin) => runCli(args, { KEYWAY_HOME: home, ...env }, stdin),
    stop: () => running.stop(),
  };
}

function readOrMakeMasterKey(home: string): string {
  const file = join(home, '.test-master-key');
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const key = randomBytes(32).toString('base64');
  writeFileSync(file, key, { mode: 0o600 });
  return key;
}

export async function seedGrants(home: string, masterKey: string, grants: TestGrant[]): Promise<void> {
  const { key } = await loadMasterKey({ dataDir: join(home, 'data'), env: { KEYWAY_MASTER_KEY: masterKey } });
  const store = await Store.open(join(home, 'data', 'store.json'), key);
  const now = new Date().toISOString();
  await store.update((draft) => {
    for (const g of grants) {
      draft.set(grantRecordId(g.id), { status: 'active', created_at: now, updated_at: now, ...g } satisfies StoredGrant);
    }
  });
  store.close();
}

export function runCli(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  // The test file's own registry of keyway listeners (test/setup), unless the test gives one.
  const listeners = process.env['KEYWAY_LISTENERS_DIR'];
  const base = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...(listeners ? { KEYWAY_LISTENERS_DIR: listeners } : {}) };
  const [program, ...first] = cliProgram();
  return runProcess(program, [...first, ...args], { ...base, ...env }, stdin);
}

/** Runs a program with exactly the given environment (like `env -i`), collecting its output. */
export function runProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  stdin?: string,
  idleTimeoutMs = 30_000,
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  // The bound is for an idle machine, stretched by the measured load: a run that starts late for
  // want of CPU is not a hang. A run killed for taking longer says so on its stderr.
  const timeoutMs = slack(idleTimeoutMs, Math.max(idleTimeoutMs, 180_000));
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'], cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (killed ? `\n[test: ${command} killed after ${timeoutMs} ms]\n` : '');
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
    // A program that exits without reading its stdin makes this write fail with EPIPE: that is the
    // program's business (its exit code says the rest), not an unhandled error in the test run.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}

/** The clean environment for a client under test: PATH and HOME only, plus what the test sets. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  // The test file's own registry of keyway listeners (test/setup): a child killed mid-test must not
  // leave its entry in the host's shared /tmp/keyway-listeners.
  const listeners = process.env['KEYWAY_LISTENERS_DIR'];
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    ...(listeners ? { KEYWAY_LISTENERS_DIR: listeners } : {}),
    ...extra,
  };
}

/**
 * One line per request, as tests wait for them: the outcome lines. An injected request's
 * write-ahead line (`phase: "sent"`, before its credential left) is left out, so a test that waits
 * for a request's line gets its outcome, not the line written before it was sent. Tests of the
 * write-ahead lines themselves read the file.
 */
export function onePerRequest(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['phase'] !== 'sent');
}
