import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deepFreeze } from '../deep-freeze.ts';
import { KeywayError } from '../errors/index.ts';
import type { LoadConfigOptions } from './load.ts';
import type { Config } from './paths.ts';

const LOAD_TIMEOUT_MS = 30_000;

type Answer = { ok: true; config: Config } | { ok: false; code: string; message: string };

/**
 * Loads and validates the config in a short-lived child process. The validator's libraries (yaml,
 * zod, the public suffix list) then never enter the proxy process, which runs for days. A worker
 * thread was tried first: its heap is freed when it ends, but the allocator keeps the thread's
 * memory and touched pages (measured: ~8 MiB of RSS left behind). The options go in as an argument
 * (two paths), the answer comes back as plain JSON on stdout and is frozen again here.
 */
export async function loadConfigIsolated(options: LoadConfigOptions): Promise<Config> {
  // Run from source (.ts, Node strips types) or from the build (.js), like this module itself.
  const entry = new URL(import.meta.url.endsWith('.ts') ? './load-child.ts' : './load-child.js', import.meta.url);
  const stdout = await new Promise<string>((resolve, reject) => {
    // No execArgv: the parent's heap limits and profilers are not meant for a one-shot validator.
    const args = [fileURLToPath(entry), JSON.stringify({ home: options.home, file: options.file })];
    execFile(process.execPath, args, { timeout: LOAD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => {
      if (out) return resolve(out);
      const reason = errOut.trim().split('\n').at(-1) || err?.message || 'no answer';
      reject(new KeywayError('config_invalid', `the config could not be loaded: ${reason}`));
    });
  });
  let answer: Answer;
  try {
    answer = JSON.parse(stdout) as Answer;
  } catch {
    throw new KeywayError('config_invalid', 'the config loader gave an unreadable answer');
  }
  if (!answer.ok) throw new KeywayError(answer.code as 'config_invalid', answer.message);
  return deepFreeze(answer.config);
}
