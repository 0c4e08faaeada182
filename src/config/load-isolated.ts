import { Worker } from 'node:worker_threads';
import { KeywayError } from '../errors/index.ts';
import type { LoadConfigOptions } from './load.ts';
import type { Config } from './paths.ts';

/**
 * Loads and validates the config in a short-lived worker thread. The validator's libraries (yaml,
 * zod, the public suffix list: about 40 MiB of RSS) then live and die with the worker instead of
 * staying in the proxy process for its whole life. The result is plain data, frozen again here.
 */
export async function loadConfigIsolated(options: LoadConfigOptions): Promise<Config> {
  // Run from source (.ts, Node strips types) or from the build (.js), like this module itself.
  const entry = new URL(import.meta.url.endsWith('.ts') ? './load-worker.ts' : './load-worker.js', import.meta.url);
  const worker = new Worker(entry, { workerData: options });
  try {
    const [answer] = (await Promise.race([
      new Promise((resolve) => worker.once('message', (m) => resolve([m]))),
      new Promise((_, reject) => worker.once('error', reject)),
    ])) as [{ ok: true; config: Config } | { ok: false; code: string; message: string }];
    if (!answer.ok) throw new KeywayError(answer.code as 'config_invalid', answer.message);
    return deepFreeze(answer.config);
  } finally {
    await worker.terminate();
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
