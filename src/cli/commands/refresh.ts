import { refreshGrant } from '../../operations/tokens.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { audited } from '../audit-change.ts';
import { servicesFor } from '../context.ts';
import { printJson, usageError } from '../io.ts';

export const refresh: Command = {
  name: 'refresh',
  usage: `keyway refresh ID [--json]

Refreshes grant ID's access token now (refresh_token or client_credentials grant), mints a
github_app or google_service_account grant's token again, or assumes an aws_sigv4 grant's role
again, sharing the refresh lock with any running proxy, and stores the result. Prints the new
expiry, never the token or key.`,
  async run(argv, io) {
    const args = parse(argv, {}, 1);
    const [id] = args.positionals;
    if (!id) throw usageError('usage: keyway refresh ID');
    const services = await servicesFor(args, io);
    // Shared with POST /api/grants/{grant}/refresh (src/operations/tokens.ts).
    const result = await audited(services, io, { action: 'grants.refresh', grant: id, changed: ['tokens'] }, () => refreshGrant({ services, env: io.env }, id));
    const expires = result.token_expires_at;
    if (args.json) printJson(io, result);
    else io.out(`refreshed grant ${id}${expires ? `; token expires ${expires}` : ''}`);
    return 0;
  },
};
