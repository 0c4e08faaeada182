// bench/startup.ts's keyway: a home made as a user makes one (`keyway init`, two grants added through
// the CLI, the master key in data/master.key), and a `keyway start` for it on port 0.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

export interface BenchHome {
  home: string;
  /** HOME for every command the bench runs (not the bench user's own). */
  userHome: string;
  /** The environment every command runs with: PATH and HOME, nothing of the bench's own. */
  env: Record<string, string>;
}

// Catches a start that hangs; a busy machine may take well past 20 s to start one.
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

export function makeBenchHome(cli: string): BenchHome {
  const home = mkdtempSync(join(tmpdir(), 'keyway-bench-startup-'));
  const userHome = mkdtempSync(join(tmpdir(), 'keyway-bench-startup-user-'));
  // As a user's home has one: keyway keeps its compile cache in it (cli/compile-cache.ts), never makes it.
  mkdirSync(join(userHome, '.cache'), { mode: 0o700 });
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: userHome };
  try {
    const keyway = (args: readonly string[], input = '') =>
      execFileSync(process.execPath, [cli, ...args, '--home', home], { env, input, stdio: ['pipe', 'ignore', 'pipe'], timeout: 30_000 });
    keyway(['init']);
    keyway(['grants', 'add', 'github', '--type', 'bearer', '--domains', 'api.github.com', '--secret-stdin'], `kwb-${randomBytes(16).toString('hex')}`);
    keyway(
      [
        'grants',
        'add',
        'openai',
        '--type',
        'api_key',
        '--domains',
        'api.openai.com',
        '--header',
        'Authorization',
        '--format',
        'Bearer {secret}',
        '--secret-stdin',
      ],
      `kwb-${randomBytes(16).toString('hex')}`,
    );
    // The admin API on a port of its own choosing: init's 8788 may be taken by another keyway here.
    const file = join(home, 'config', 'keyway.yaml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.setIn(['admin', 'listen'], '127.0.0.1:0');
    writeFileSync(file, doc.toString());
    return { home, userHome, env };
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    rmSync(userHome, { recursive: true, force: true });
    throw err;
  }
}

/** `keyway start` on port 0, as a child; resolves once it says where it listens. */
export async function startBenchKeyway(cli: string, home: string, env: Record<string, string>): Promise<{ pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [cli, 'start', '--home', home, '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const started = await new Promise<boolean>((done) => {
    const timer = setTimeout(() => done(false), START_TIMEOUT_MS);
    const check = () => {
      if (!err.includes('keyway proxy on ')) return;
      clearTimeout(timer);
      child.stderr.off('data', check);
      done(true);
    };
    child.stderr.on('data', check);
    child.once('exit', () => {
      clearTimeout(timer);
      done(false);
    });
  });
  // keyway re-executes itself under its runtime settings (cli/proxy-runtime.ts): its pid is in data/proxy.json.
  const record = started ? (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { pid: number }) : undefined;
  if (record === undefined) {
    child.kill('SIGKILL');
    throw new Error(`keyway start did not start within ${START_TIMEOUT_MS} ms:\n${err.slice(-2000)}`);
  }
  return {
    pid: record.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
