// The child side of loadConfigIsolated: validate, print the plain result or the one-line error as JSON.
import { KeywayError } from '../errors/index.ts';
import { loadConfig, type LoadConfigOptions } from './load.ts';

let answer: object;
try {
  answer = { ok: true, config: loadConfig(JSON.parse(process.argv[2] ?? '{}') as LoadConfigOptions) };
} catch (err) {
  const code = err instanceof KeywayError ? err.code : 'config_invalid';
  answer = { ok: false, code, message: (err as Error).message };
}
process.stdout.write(JSON.stringify(answer));
