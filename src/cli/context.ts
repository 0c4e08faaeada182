import type { Dispatcher } from '../net/undici.ts';
import { openServices, type Services } from '../services.ts';
import { resolveFromHome } from '../config/index.ts';
import { createResolver } from '../proxy/resolve.ts';
import { createUpstream } from '../proxy/upstream.ts';
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

/**
 * How the CLI reaches token, device and revocation endpoints: like the proxy reaches upstreams
 * (proxy.hosts, the system CAs plus proxy.upstream_ca). Close it when done.
 */
export function endpointDispatcher(config: Config): Dispatcher {
  return createUpstream({
    resolve: createResolver(config.proxy.hosts),
    extraCaFiles: config.proxy.upstream_ca.map((p) => resolveFromHome(config, p)),
    headersTimeoutMs: config.oauth.token_timeout,
  }).dispatcher;
}
