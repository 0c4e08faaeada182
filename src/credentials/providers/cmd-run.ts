import { spawn } from 'node:child_process';
import { formatDuration } from '../../config/duration.ts';
import type { SecretCommand } from '../../config/secret-command.ts';

// Running a grant's secret command (config/secret-command.ts) once, bounded every way an agent's
// traffic could make it hurt keyway: no shell (the words go to execve as they are), stdout kept up
// to MAX_OUTPUT (more is a failure, never a secret cut short), stderr read only for its start, a
// time limit after which the whole process group is killed, and nothing read from keyway's stdin.

/** The most a command may print: a token, a JSON key, a PEM; more is a mistake. */
export const MAX_OUTPUT = 64 * 1024;
/** How much of stderr is kept for the failure's message (the rest is read and dropped). */
const MAX_STDERR = 4 * 1024;

/** Why a run gave no secret, in words for the message (never its output). */
export class CommandFailed extends Error {
  /** The start of what the command wrote to stderr, raw: the caller scrubs and cuts it. */
  readonly stderr: string;
  /** What it printed on stdout, if anything: to scrub from stderr, never shown. */
  readonly stdout: string;

  constructor(reason: string, stderr: string, stdout: string) {
    super(reason);
    this.name = 'CommandFailed';
    this.stderr = stderr;
    this.stdout = stdout;
  }
}

/** Runs the command once: its trimmed stdout, or a CommandFailed saying why. */
export function runCommand(command: SecretCommand, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const [program, ...args] = command.argv as [string, ...string[]];
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let settled = false;
    const child = spawn(program, args, {
      shell: false,
      // Its own process group, so that a timeout kills what it started too (a wrapper's child).
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      windowsHide: true,
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already, or never formed
      }
    };
    const printed = () => Buffer.concat(stdout).toString('utf8');
    const fail = (reason: string, kill: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (kill) killGroup();
      child.stdout.destroy();
      child.stderr.destroy();
      reject(new CommandFailed(reason, stderr, printed()));
    };
    const timer = setTimeout(() => fail(`timed out after ${formatDuration(command.timeoutMs)}`, true), command.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_OUTPUT) return fail(`printed more than ${MAX_OUTPUT / 1024} KiB`, true);
      stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString('utf8').slice(0, MAX_STDERR - stderr.length);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      fail(err.code === 'ENOENT' ? 'could not be started: not found (on PATH)' : `could not be started: ${err.code ?? 'error'}`, false);
    });
    // 'close': the process has exited and its stdout and stderr are read to their end.
    child.once('close', (code, signal) => {
      if (settled) return;
      if (code !== 0) return fail(signal !== null ? `was killed by ${signal}` : `exited with status ${code}`, false);
      const text = printed().trim();
      if (text === '') return fail('printed nothing', false);
      settled = true;
      clearTimeout(timer);
      resolve(text);
    });
  });
}
