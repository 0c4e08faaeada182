// Finding and running client programs: exactly the given environment, no stdin, bounded output and time.

import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { MAX_OUTPUT } from './context.ts';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export async function onPath(name: string, env: Record<string, string>): Promise<{ path: string } | { missing: string }> {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      if ((await stat(candidate)).isFile()) return { path: candidate };
    } catch {
      // not here
    }
  }
  return { missing: `${name} is not installed (not on PATH)` };
}

/** Runs a program with exactly `env`, no stdin, output bounded, killed after timeoutMs. */
export function runProcess(command: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let timedOut = false;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => {
      if (outBytes < MAX_OUTPUT) out.push(c);
      outBytes += c.length;
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errBytes < MAX_OUTPUT) err.push(c);
      errBytes += c.length;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: '', stderr: `cannot run ${command}: ${e.code ?? e.message}`, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
  });
}
