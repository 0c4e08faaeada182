import { grantRecordId, type StoredGrant } from '../../credentials/grant-record.ts';
import { KeywayError } from '../../errors/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { usageError } from '../io.ts';
import { parseSecret } from './grants.ts';

export const secrets: Command = {
  name: 'secrets',
  summary: "set a grant's secret",
  usage: `keyway secrets set ID [--value TEXT | --stdin]

Sets the secret of grant ID (made with \`keyway grants add\`). A plain string for api_key and
bearer; a JSON object for basic ({"username","password"}), oauth2 ({"clientId","clientSecret",
"refreshToken",…}) and client_credentials. Prefer --stdin: a --value shows in shell history and ps.
The value is never printed back.`,
  async run(argv, io) {
    const args = parse(argv, { value: { type: 'string' }, stdin: { type: 'boolean' } });
    const [action, id] = args.positionals;
    if (action !== 'set' || !id) throw usageError('usage: keyway secrets set ID [--value TEXT | --stdin]');
    const value = args.string('value');
    if ((value === undefined) === !args.flag('stdin')) throw usageError('give the secret with exactly one of --value or --stdin');
    const input = value ?? (await io.readStdin());
    const services = await servicesFor(args, io);
    if (services.config.grants[id]) {
      throw new KeywayError('conflict', `grant "${id}" is defined in the config; its secret comes from there (env: or file:)`);
    }
    await services.store.update((draft) => {
      const grant = draft.get<StoredGrant>(grantRecordId(id));
      if (!grant) throw new KeywayError('not_found', `no grant "${id}"; add it with \`keyway grants add ${id} --type … --domains …\``);
      const secret = parseSecret(grant.type, input);
      draft.set(grantRecordId(id), { ...grant, secret, status: 'active', updated_at: new Date().toISOString() } satisfies StoredGrant);
    });
    io.out(args.json ? JSON.stringify({ grant: id, secret: 'set' }) : `secret set for grant ${id}`);
    return 0;
  },
};
