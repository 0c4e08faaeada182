// keyway in a child process for the hostile suites, restarted if it dies: a crash is counted (with
// the tail of its stderr kept for the report) instead of taking the test runner down with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { slack } from '../../helpers/load.ts';

const SCRIPT = fileURLToPath(new URL('./keyway-process.ts', import.meta.url));

export interface KeywayChild {
  /** The current proxy port (changes after a restart). */
  readonly port: number;
  readonly crashes: Array<{ code: number | null; signal: string | null; stderr: string }>;
  /** True while the process is up. */
  alive(): boolean;
  /** Restarts after a crash; resolves at once if it is up. */
  ensure(): Promise<void>;
  stop(): Promise<void>;
}

function listenersEnv(): Record<string, string> {
  const dir = process.env['KEYWAY_LISTENERS_DIR'];
  return dir ? { KEYWAY_LISTENERS_DIR: dir } : {};
}

export async function startKeywayChild(home: string, env: Record<string, string>): Promise<KeywayChild> {
  const crashes: KeywayChild['crashes'] = [];
  let child: ChildProcess | undefined;
  let port = 0;
  let stopping = false;

  const launch = async () => {
    const proc = spawn(process.execPath, [SCRIPT, home], {
      // The test file's own registry of listeners (test/setup): a crashed child's entry stays out of the host's.
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...listenersEnv(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8192)));
    proc.once('exit', (code, signal) => {
      if (!stopping) crashes.push({ code, signal, stderr });
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      const limitMs = slack(20_000, 60_000); // a wait on the start line: patient on a busy machine
      const timer = setTimeout(() => reject(new Error(`keyway child did not start in ${limitMs / 1000} s: ${stderr}`)), limitMs);
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(out.split('\n')[0]!);
        }
      });
      proc.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`keyway child exited: ${stderr}`));
      });
    });
    port = (JSON.parse(line) as { port: number }).port;
    child = proc;
  };

  await launch();
  return {
    get port() {
      return port;
    },
    crashes,
    alive: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async ensure() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      await launch();
    },
    async stop() {
      stopping = true;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5_000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
}
