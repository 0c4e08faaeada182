import { hostname } from 'node:os';
import { openAuditLog } from '../app/audit-log.ts';
import { keyLinesOwed } from '../credentials/store/owed-key-lines.ts';
import { openServices, type Services } from '../open-home.ts';
import { resolveHome } from '../paths.ts';
import type { Args } from './args.ts';
import type { CommandIO } from './io.ts';

/**
 * Opens config, master key and store for a command, honouring --home and --config. Nothing is made
 * on disk until the command first writes to the store: reading a new home leaves it untouched.
 * `auditOnly`: the audit commands', which open a home that lost its store (OpenServicesOptions).
 */
export async function servicesFor(args: Args, io: CommandIO, opts: { auditOnly?: boolean } = {}): Promise<Services> {
  const services = await openServices({
    home: resolveHome(args.string('home'), io.env),
    configFile: args.string('config'),
    env: io.env,
    createOnFirstWrite: true,
    auditOnly: opts.auditOnly === true,
  });
  // A key change this open finished (a rotation or rewrap cut short) gets its audit line now, even
  // from a command that only reads; if the log cannot take it, the line stays owed for the next writer.
  if (keyLinesOwed(services.paths.dataDir)) {
    await openAuditLog(services, io.env, { tableChain: `cli@${hostname()}` })
      .then((log) => log.close())
      .catch((err: Error) => io.err(`keyway: warning: an audit line a key change owes is not written yet (${err.message})`));
  }
  return services;
}

export { configFor } from './config-for.ts';

// How the CLI reaches token, device and revocation endpoints (shared with refresh and revoke).
export { endpointDispatcher } from '../operations/tokens.ts';
