import { openServices, type Services } from '../services.ts';
import type { Config } from '../config/index.ts';
import { loadConfig } from '../config/load.ts';
import { resolveHome } from '../paths.ts';
import type { Args } from './args.ts';
import type { CommandIO } from './io.ts';

/**
 * Opens config, master key and store for a command, honouring --home and --config. Nothing is made
 * on disk until the command first writes to the store: reading a new home leaves it untouched.
 */
export function servicesFor(args: Args, io: CommandIO): Promise<Services> {
  return openServices({ home: resolveHome(args.string('home'), io.env), configFile: args.string('config'), env: io.env, createOnFirstWrite: true });
}

/** The config only, for commands that need no store (audit tail/query, ca). */
export function configFor(args: Args, io: CommandIO): Config {
  return loadConfig({ home: resolveHome(args.string('home'), io.env), file: args.string('config') });
}

// How the CLI reaches token, device and revocation endpoints (shared with refresh and revoke).
export { endpointDispatcher } from '../operations/tokens.ts';
