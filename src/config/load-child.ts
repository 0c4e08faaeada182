// The child side of loadConfigIsolated: validate, print the plain result (and the text's hash) or the one-line error as JSON.
import { KeywayError } from '../errors/index.ts';
import { parseConfigSource } from './load.ts';
import { configTextHash, type LoadConfigOptions, readConfigSource } from './source.ts';

let answer: object;
try {
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadConfigOptions;
  const source = readConfigSource(options);
  // The hash of the very text parsed: the running keyway tells `keyway run` which text its config came from.
  answer = { ok: true, config: parseConfigSource(options.home, source), sha256: configTextHash(source.text) };
} catch (err) {
  const code = err instanceof KeywayError ? err.code : 'config_invalid';
  answer = { ok: false, code, message: (err as Error).message };
}
process.stdout.write(JSON.stringify(answer));
