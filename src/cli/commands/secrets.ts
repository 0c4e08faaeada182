import { setSecret } from '../../operations/secrets.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { audited } from '../audit-change.ts';
import { servicesFor } from '../context.ts';
import { usageError } from '../io.ts';

export const secrets: Command = {
  name: 'secrets',
  usage: `keyway secrets set ID [--value TEXT | --stdin]

Sets the secret of grant ID (made with \`keyway grants add\`). A plain string for api_key and
bearer; for basic, username:password or a JSON object {"username","password"}; a JSON object for oauth2 ({"clientId","clientSecret",
"refreshToken","accessToken","expiresAt","scopes"}, camelCase or snake_case) and client_credentials.
When no grant ID exists and ID names a provider preset (spotify, SPOTIFY_OAUTH, github, …), an
oauth2 grant named after the preset is made with the preset's endpoints and domains.
Prefer --stdin: a --value shows in shell history and ps. The value is never printed back.`,
  async run(argv, io) {
    const args = parse(argv, { value: { type: 'string' }, stdin: { type: 'boolean' } });
    const [action, name] = args.positionals;
    if (action !== undefined && action !== 'set') throw usageError(`secrets: unknown subcommand "${action}" (expected: set)`);
    if (!name) throw usageError('usage: keyway secrets set ID [--value TEXT | --stdin]');
    const value = args.string('value');
    if ((value === undefined) === !args.flag('stdin')) throw usageError('give the secret with exactly one of --value or --stdin');
    const input = value ?? (await io.readStdin());
    const services = await servicesFor(args, io);
    // The operation is shared with PUT /api/grants/{grant}/secret (src/operations/secrets.ts).
    const { grant, created, warnings } = await audited(services, io, { action: 'grants.set_secret', grant: name, changed: ['secret'] }, () =>
      setSecret(services, name, input),
    );
    const message = created ? `made grant ${grant.id} from the ${grant.id} preset and set its secret` : `secret set for grant ${grant.id}`;
    io.out(args.json ? JSON.stringify({ grant: grant.id, secret: 'set', created }) : message);
    for (const line of warnings) io.err(line);
    return 0;
  },
};
