import { GRANT_ID, GRANT_TYPES, type GrantType, type InjectConfig } from '../../config/index.ts';
import { grantRecordId, type StoredGrant } from '../../credentials/grant-record.ts';
import { listGrants } from '../../credentials/grant-listing.ts';
import { injectorFor } from '../../credentials/injectors/index.ts';
import { parseMaterial } from '../../credentials/material.ts';
import { KeywayError } from '../../errors/index.ts';
import { parseDomainPatternStrict } from '../../config/domain-breadth.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError } from '../io.ts';

const USAGE = `keyway grants list [--json]
keyway grants show ID [--json]
keyway grants rm ID
keyway grants add ID --type T --domains D[,D…] [--header H --format F | --query P] [--provider P]
                     [--allow-http] [--secret-stdin]

Types: ${GRANT_TYPES.join(', ')}. bearer, oauth2 and client_credentials set
"Authorization: Bearer {secret}"; basic sets "Authorization: Basic …"; api_key needs
--header (with --format, e.g. "token {secret}") or --query. Secret values are never printed.`;

export const grants: Command = {
  name: 'grants',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(argv, {
      type: { type: 'string' },
      domains: { type: 'string' },
      header: { type: 'string' },
      format: { type: 'string' },
      query: { type: 'string' },
      provider: { type: 'string' },
      'allow-http': { type: 'boolean' },
      'secret-stdin': { type: 'boolean' },
    });
    const [action, id] = args.positionals;
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) {
      const rows = listGrants(services);
      if (args.json) printJson(io, rows);
      else {
        // Both clocks side by side: the token's expiry and each agent's lease.
        const table = rows.map((r) => ({ ...r, leases: r.leases.map((l) => `${l.agent}:${l.state === 'active' ? l.expires_at : l.state}`) }));
        printTable(io, table, ['id', 'type', 'status', 'domains', 'scopes', 'token_expires_at', 'leases', 'last_refreshed_at', 'last_used_at']);
      }
      return 0;
    }
    if (!id) throw usageError(`grants ${action}: expected a grant id`);
    if (action === 'show') {
      const row = listGrants(services).find((g) => g.id === id);
      if (!row) throw new KeywayError('not_found', `no grant "${id}"`);
      if (args.json) printJson(io, row);
      else for (const [k, v] of Object.entries(row)) io.out(`${k.padEnd(17)}${Array.isArray(v) ? v.join(', ') : String(v ?? '-')}`);
      return 0;
    }
    if (action === 'rm') {
      if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; remove it there`);
      const removed = await services.store.update((draft) => draft.delete(grantRecordId(id)));
      if (!removed) throw new KeywayError('not_found', `no grant "${id}"`);
      io.out(args.json ? JSON.stringify({ removed: id }) : `removed grant ${id}`);
      return 0;
    }
    if (action === 'add') {
      if (!GRANT_ID.test(id)) throw usageError(`grant id "${id}": expected a-z, 0-9 and - (starting with a letter or digit)`);
      if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is already defined in the config`);
      const type = args.string('type') as GrantType | undefined;
      if (!type || !GRANT_TYPES.includes(type)) throw usageError(`--type: expected one of ${GRANT_TYPES.join(', ')}`);
      const domains = args.list('domains') ?? [];
      if (domains.length === 0) throw usageError('--domains: expected at least one domain');
      for (const d of domains) {
        const parsed = parseDomainPatternStrict(d);
        if (typeof parsed === 'string') throw usageError(`--domains: ${parsed}`);
      }
      const inject: InjectConfig = { header: args.string('header'), format: args.string('format'), query: args.string('query') };
      if (inject.format !== undefined && !inject.format.includes('{secret}')) throw usageError('--format must contain {secret}');
      try {
        injectorFor(type, inject);
      } catch (err) {
        throw usageError((err as Error).message);
      }
      const secret = args.flag('secret-stdin') ? parseSecret(type, await io.readStdin()) : undefined;
      const now = new Date().toISOString();
      const record: StoredGrant = {
        id,
        type,
        domains,
        inject: inject.header || inject.query || inject.format ? inject : undefined,
        allow_http: args.flag('allow-http') || undefined,
        provider: args.string('provider'),
        status: 'active',
        secret,
        created_at: now,
        updated_at: now,
      };
      await services.store.update((draft) => {
        if (draft.get(grantRecordId(id))) throw new KeywayError('conflict', `grant "${id}" exists; remove it first or use \`keyway secrets set ${id}\``);
        draft.set(grantRecordId(id), record);
      });
      const row = listGrants(services).find((g) => g.id === id);
      if (args.json) printJson(io, row);
      else io.out(`added grant ${id} (${type}, ${domains.join(', ')}; secret ${secret === undefined ? `missing: keyway secrets set ${id} --stdin` : 'set'})`);
      return 0;
    }
    throw usageError(`grants: unknown action "${action}"`);
  },
};

export function parseSecret(type: GrantType, input: string) {
  try {
    return parseMaterial(type, input);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}
