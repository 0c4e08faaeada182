import { execFile } from 'node:child_process';
import { type OwnRole, ownChildCommand } from './own-program.ts';

/**
 * Runs one of keyway's own modules as a short-lived Node process and resolves with what it printed.
 * For work whose libraries or caches would otherwise stay in the proxy process for as long as it
 * runs (config validation, the system's CA store). `sibling` is the module's name beside `from`
 * (the caller's module URL), without extension: run from source (.ts, Node strips types) or from
 * the build (.js), like the caller; `role` names it to the single executable (process/own-program.ts). No execArgv: the parent's heap limits and profilers are not meant
 * for it. Rejects with the child's last stderr line (or why it did not run) when it printed nothing.
 */
export function runOneShotChild(from: string, sibling: string, role: OwnRole, args: readonly string[], timeoutMs: number): Promise<string> {
  const entry = new URL(`./${sibling}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
  const [program, ...first] = ownChildCommand(entry, role);
  return new Promise<string>((resolve, reject) => {
    execFile(program, [...first, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => {
      if (out) return resolve(out);
      reject(new Error(errOut.trim().split('\n').at(-1) || err?.message || 'no answer'));
    });
  });
}
