// The real CLI run with the kill preload (kill-at.mjs): SIGKILLed at one exact file operation, where
// a `kill -9` at that instant would land. For crash tests of commands (issue 86).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CLI } from './keyway.ts';

const KILL_AT = fileURLToPath(new URL('./kill-at.mjs', import.meta.url));

/** Runs `keyway ARGS --home HOME` killed at `killAt` (KEYWAY_TEST_KILL_AT); resolves the signal it ended by, its pid and its stderr. */
export function runKilled(
  home: string,
  args: string[],
  env: Record<string, string>,
  killAt: string,
  stdin?: string,
): Promise<{ signal: string | null; pid: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', KILL_AT, CLI, ...args, '--home', home], {
      env: { ...env, KEYWAY_TEST_KILL_AT: killAt },
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (_code, signal) => resolve({ signal, pid: child.pid!, stderr }));
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}
