// `keyway connect` as a user runs it, in its own process against a test proxy's home: the tests
// read its stderr for the consent URL (or device code) and complete the provider's side themselves.
import { type ChildProcess, spawn } from 'node:child_process';
import { cliCommand, type TestProxy } from './keyway.ts';

export interface RunningConnect {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<number | null>;
}

export function runConnect(proxy: TestProxy, args: string[]): RunningConnect {
  const child = spawn(...cliCommand(['connect', ...args]), {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', KEYWAY_HOME: proxy.home, ...proxy.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => err, stdout: () => out, exit };
}

/** Waits for `pattern` on the command's stderr; throws with what it printed if it exits or time runs out first. */
export async function waitForOutput(running: RunningConnect, pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(running.stderr());
    if (match) return match;
    if (Date.now() > deadline || running.child.exitCode !== null) throw new Error(`no ${pattern} in: ${running.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
