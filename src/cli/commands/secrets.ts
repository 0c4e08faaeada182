import { GRANT_ID } from '../../config/index.ts';
import { grantRecordId, type StoredGrant } from '../../credentials/grant-record.ts';
import { listGrants } from '../../credentials/grant-listing.ts';
import { oauthStateId } from '../../credentials/oauth-state.ts';
import { findPreset } from '../../credentials/providers/presets.ts';
import { KeywayError } from '../../errors/index.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { usageError } from '../io.ts';
import { overlapWarnings } from './grant-input.ts';
import { parseSecret } from './grants.ts';

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
    const id = services.store.get(grantRecordId(name)) || services.config.grants[name] ? name : (findPreset(name)?.slug ?? name);
    if (services.config.grants[id]) {
      throw new KeywayError('conflict', `grant "${id}" is defined in the config; its secret comes from there (env: or file:)`);
    }
    const others = listGrants(services);
    const created = await services.store.update((draft) => {
      const existing = draft.get<StoredGrant>(grantRecordId(id));
      const now = new Date().toISOString();
      let grant: StoredGrant;
      if (existing) {
        grant = existing;
      } else {
        const preset = findPreset(name);
        if (!preset)
          throw new KeywayError('not_found', `no grant "${name}"; add it with \`keyway grants add ${GRANT_ID.test(name) ? name : 'ID'} --type … --domains …\``);
        grant = { id, type: 'oauth2', domains: [...preset.preset.domains], provider: preset.slug, status: 'active', created_at: now, updated_at: now };
      }
      const secret = parseSecret(grant.type, input);
      draft.set(grantRecordId(id), { ...grant, secret, status: 'active', updated_at: now } satisfies StoredGrant);
      // New material replaces any token state a refresh or a revoke left behind.
      draft.delete(oauthStateId(id));
      return !existing;
    });
    const message = created ? `made grant ${id} from the ${id} preset and set its secret` : `secret set for grant ${id}`;
    io.out(args.json ? JSON.stringify({ grant: id, secret: 'set', created }) : message);
    if (created) for (const line of overlapWarnings(id, listGrants(services).find((g) => g.id === id)?.domains ?? [], others)) io.err(line);
    return 0;
  },
};
