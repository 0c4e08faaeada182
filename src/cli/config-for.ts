import type { Config } from '../config/index.ts';
import { loadConfig } from '../config/load.ts';
import { resolveHome } from '../paths.ts';
import type { Args } from './args.ts';
import type { CommandIO } from './io.ts';

// Apart from context.ts, whose store and token modules `keyway run` never needs: a command that
// only reads the config loads this alone (start-up is what an agent wrapping each call pays).

/** The config only, for commands that need no store (audit tail/query, ca, env, run). */
export function configFor(args: Args, io: CommandIO): Config {
  return loadConfig({ home: resolveHome(args.string('home'), io.env), file: args.string('config') });
}
