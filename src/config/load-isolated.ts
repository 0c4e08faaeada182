import { deepFreeze } from '../deep-freeze.ts';
import { KeywayError } from '../errors/index.ts';
import { runOneShotChild } from '../process/one-shot-child.ts';
import type { LoadConfigOptions } from './load.ts';
import type { Config } from './paths.ts';

const LOAD_TIMEOUT_MS = 30_000;

type Answer = { ok: true; config: Config; sha256: string | null } | { ok: false; code: string; message: string };

/** The hash of the file text each config loaded here came from (null: no file). */
const loadedFrom = new WeakMap<Config, string | null>();

/** Which text `config` was loaded from (source.ts's configTextHash), or undefined for a config not loaded here. */
export function loadedTextHash(config: Config): string | null | undefined {
  return loadedFrom.get(config);
}

/**
 * Loads and validates the config in a short-lived child process. The validator's libraries (yaml,
 * zod, the public suffix list) then never enter the proxy process, which runs for days. A worker
 * thread was tried first: its heap is freed when it ends, but the allocator keeps the thread's
 * memory and touched pages (measured: ~8 MiB of RSS left behind). The options go in as an argument
 * (two paths), the answer comes back as plain JSON on stdout and is frozen again here.
 */
export async function loadConfigIsolated(options: LoadConfigOptions): Promise<Config> {
  let stdout: string;
  try {
    stdout = await runOneShotChild(
      import.meta.url,
      'load-child',
      'config/load-child',
      [JSON.stringify({ home: options.home, file: options.file })],
      LOAD_TIMEOUT_MS,
    );
  } catch (err) {
    throw new KeywayError('config_invalid', `the config could not be loaded: ${(err as Error).message}`);
  }
  let answer: Answer;
  try {
    answer = JSON.parse(stdout) as Answer;
  } catch {
    throw new KeywayError('config_invalid', 'the config loader gave an unreadable answer');
  }
  if (!answer.ok) throw new KeywayError(answer.code as 'config_invalid', answer.message);
  const config = deepFreeze(answer.config);
  loadedFrom.set(config, answer.sha256);
  return config;
}
