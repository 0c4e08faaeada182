// The worker side of loadConfigIsolated: validate, post the plain result or the one-line error.
import { parentPort, workerData } from 'node:worker_threads';
import { KeywayError } from '../errors/index.ts';
import { loadConfig, type LoadConfigOptions } from './load.ts';

try {
  parentPort?.postMessage({ ok: true, config: loadConfig(workerData as LoadConfigOptions) });
} catch (err) {
  const code = err instanceof KeywayError ? err.code : 'config_invalid';
  parentPort?.postMessage({ ok: false, code, message: (err as Error).message });
}
