import { isOAuthGrant } from '../../credentials/credential-source.ts';
import { buildGrants } from '../../credentials/grants.ts';
import { tokenManagerFor } from '../../credentials/providers/config-tokens.ts';
import { KeywayError } from '../../errors/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { endpointDispatcher, servicesFor } from '../context.ts';
import { printJson, usageError } from '../io.ts';

export const refresh: Command = {
  name: 'refresh',
  usage: `keyway refresh ID [--json]

Refreshes grant ID's access token now (refresh_token or client_credentials grant), sharing the
refresh lock with any running proxy, and stores the result. Prints the new expiry, never the token.`,
  async run(argv, io) {
    const args = parse(argv);
    const [id] = args.positionals;
    if (!id) throw usageError('usage: keyway refresh ID');
    const services = await servicesFor(args, io);
    const grant = buildGrants(services.config, services.store, io.env).get(id);
    if (!grant) throw new KeywayError('not_found', `no grant "${id}"`);
    if (!isOAuthGrant(grant)) throw usageError(`grant "${id}" is ${grant.type}: only oauth2 and client_credentials grants refresh`);
    const dispatcher = endpointDispatcher(services.config);
    try {
      const tokens = tokenManagerFor(services.config, { store: services.store, lockDir: services.paths.locksDir, env: io.env, dispatcher });
      await tokens.refreshNow(grant);
      const state = tokens.state(grant);
      const expires = state.expiresAt ? new Date(state.expiresAt).toISOString() : null;
      if (args.json) printJson(io, { grant: id, refreshed: true, token_expires_at: expires });
      else io.out(`refreshed grant ${id}${expires ? `; token expires ${expires}` : ''}`);
      return 0;
    } finally {
      await dispatcher.close();
    }
  },
};
