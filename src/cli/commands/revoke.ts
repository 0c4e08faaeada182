import { revokeGrant } from '../../operations/tokens.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { audited } from '../audit-change.ts';
import { servicesFor } from '../context.ts';
import { printJson, usageError } from '../io.ts';

export const revoke: Command = {
  name: 'revoke',
  usage: `keyway revoke ID [--json]

Revokes grant ID's refresh and access tokens at the provider where it has a revocation endpoint
(RFC 7009), then marks the grant revoked either way: it stops injecting at once, in every running
proxy. \`keyway connect\` or \`keyway secrets set\` makes it active again.`,
  async run(argv, io) {
    const args = parse(argv, {}, 1);
    const [id] = args.positionals;
    if (!id) throw usageError('usage: keyway revoke ID');
    const services = await servicesFor(args, io);
    // Shared with POST /api/grants/{grant}/revoke (src/operations/tokens.ts).
    const result = await audited(services, io, { action: 'grants.revoke', grant: id, changed: ['tokens'] }, () => revokeGrant({ services, env: io.env }, id));
    if (args.json) printJson(io, result);
    else io.out(`grant ${id} revoked (${result.provider})`);
    return 0;
  },
};
