import { GRANT_ID, GRANT_TYPES, type GrantType, type InjectConfig } from '../../config/index.ts';
import { grantRecordId, type StoredGrant } from '../../credentials/grant-record.ts';
import { listGrants, type GrantListing } from '../../credentials/grant-listing.ts';
import { parseMaterial } from '../../credentials/material.ts';
import { KeywayError } from '../../errors/index.ts';
import type { Services } from '../../services.ts';
import { parse, type Args } from '../args.ts';
import type { Command } from '../command.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError, type CommandIO } from '../io.ts';
import { checkInjection, domainsOption, hasInjection, overlapWarnings } from './grant-input.ts';
import { printGrant } from './grant-show.ts';

const USAGE = `keyway grants list [--json]
keyway grants show ID [--json]
keyway grants rm ID
keyway grants add ID --type T --domains D[,D…] [--header H --format F | --query P] [--provider P]
                     [--allow-http] [--secret-stdin]
keyway grants set ID [--domains D[,D…]] [--header H] [--format F | --query P] [--json]

Types: ${GRANT_TYPES.join(', ')}. bearer, oauth2 and client_credentials set
"Authorization: Bearer {secret}"; basic sets "Authorization: Basic …"; api_key needs
--header (with --format, e.g. "token {secret}") or --query. Secret values are never printed.
\`set\` changes a grant's domains or how it is injected and keeps its secret and tokens.
Two grants whose domains overlap are told apart per request by the agent's binding
(keyway agents add ID --grants G) or the header X-Keyway-Grant: ID; add and set warn about it.`;

const ACTIONS = ['list', 'show', 'add', 'set', 'rm'] as const;

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
    if (action !== undefined && !(ACTIONS as readonly string[]).includes(action)) {
      throw usageError(`grants: unknown subcommand "${action}" (expected one of: ${ACTIONS.join(', ')})`);
    }
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) return list(services, args, io);
    if (!id) throw usageError(`grants ${action}: expected a grant id`);
    if (action === 'show') {
      const row = listGrants(services).find((g) => g.id === id);
      if (!row) throw new KeywayError('not_found', `no grant "${id}"`);
      if (args.json) printJson(io, row);
      else printGrant(io, row);
      return 0;
    }
    if (action === 'rm') {
      if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; remove it there`);
      const removed = await services.store.update((draft) => draft.delete(grantRecordId(id)));
      if (!removed) throw new KeywayError('not_found', `no grant "${id}"`);
      io.out(args.json ? JSON.stringify({ removed: id }) : `removed grant ${id}`);
      return 0;
    }
    if (action === 'set') return set(services, args, io, id);
    return add(services, args, io, id);
  },
};

/** A grant that can authenticate nothing yet says so where its status would read `active`. */
function displayStatus(row: GrantListing): string {
  const noSecret = row.secret === 'missing' && row.status === 'active' && row.token_expires_at === null && row.last_refreshed_at === null;
  return noSecret ? 'no secret' : row.status;
}

function list(services: Services, args: Args, io: CommandIO): number {
  const rows = listGrants(services);
  if (args.json) {
    printJson(io, rows);
    return 0;
  }
  // Both clocks side by side: the token's expiry and each agent's lease.
  const table = rows.map((r) => ({
    ...r,
    status: displayStatus(r),
    leases: r.leases.map((l) => `${l.agent}:${l.state === 'active' ? l.expires_at : l.state}`),
  }));
  printTable(io, table, ['id', 'type', 'status', 'domains', 'scopes', 'token_expires_at', 'leases', 'last_refreshed_at', 'last_used_at']);
  for (const row of table.filter((r) => r.status === 'no secret')) {
    io.out(
      row.source === 'config'
        ? `grant ${row.id} has no secret: set grants.${row.id}.secret in the config`
        : `grant ${row.id} has no secret: keyway secrets set ${row.id} --stdin`,
    );
  }
  return 0;
}

async function add(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  if (!GRANT_ID.test(id)) throw usageError(`grant id "${id}": expected a-z, 0-9 and - (starting with a letter or digit)`);
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is already defined in the config`);
  const type = args.string('type') as GrantType | undefined;
  if (!type || !GRANT_TYPES.includes(type)) throw usageError(`--type: expected one of ${GRANT_TYPES.join(', ')}`);
  const domains = domainsOption(args);
  if (domains === undefined) throw usageError('--domains: expected at least one domain');
  const inject: InjectConfig = { header: args.string('header'), format: args.string('format'), query: args.string('query') };
  checkInjection(type, inject);
  const secret = args.flag('secret-stdin') ? parseSecret(type, await io.readStdin()) : undefined;
  const now = new Date().toISOString();
  const record: StoredGrant = {
    id,
    type,
    domains,
    inject: hasInjection(inject) ? inject : undefined,
    allow_http: args.flag('allow-http') || undefined,
    provider: args.string('provider'),
    status: 'active',
    secret,
    created_at: now,
    updated_at: now,
  };
  const others = listGrants(services);
  await services.store.update((draft) => {
    if (draft.get(grantRecordId(id)))
      throw new KeywayError('conflict', `grant "${id}" exists; change it with \`keyway grants set ${id}\` or its secret with \`keyway secrets set ${id}\``);
    draft.set(grantRecordId(id), record);
  });
  const row = listGrants(services).find((g) => g.id === id);
  if (args.json) printJson(io, row);
  else io.out(`added grant ${id} (${type}, ${domains.join(', ')}; secret ${secret === undefined ? `missing: keyway secrets set ${id} --stdin` : 'set'})`);
  for (const line of overlapWarnings(id, domains, others)) io.err(line);
  return 0;
}

/**
 * Changes domains or injection in place: the secret, tokens, leases and usage stay. The injection
 * flags replace the old injection as a whole where they conflict (--query drops a header and back).
 */
async function set(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  if (services.config.grants[id]) throw new KeywayError('conflict', `grant "${id}" is defined in the config; change it there`);
  const domains = domainsOption(args);
  const header = args.string('header');
  const format = args.string('format');
  const query = args.string('query');
  if (domains === undefined && header === undefined && format === undefined && query === undefined) {
    throw usageError('grants set: give at least one of --domains, --header, --format, --query');
  }
  if (query !== undefined && (header !== undefined || format !== undefined)) throw usageError('use --query or --header/--format, not both');
  await services.store.update((draft) => {
    const existing = draft.get<StoredGrant>(grantRecordId(id));
    if (!existing) throw new KeywayError('not_found', `no grant "${id}" (see keyway grants list)`);
    let inject = existing.inject;
    if (query !== undefined) inject = { query };
    else if (header !== undefined || format !== undefined) {
      const old = existing.inject?.query === undefined ? existing.inject : undefined;
      inject = { header: header ?? old?.header, format: format ?? old?.format };
    }
    checkInjection(existing.type, inject ?? {});
    const changed: StoredGrant = {
      ...existing,
      domains: domains ?? existing.domains,
      inject: hasInjection(inject) ? inject : undefined,
      updated_at: new Date().toISOString(),
    };
    draft.set(grantRecordId(id), changed);
  });
  const row = listGrants(services).find((g) => g.id === id)!;
  if (args.json) printJson(io, row);
  else io.out(`changed grant ${id} (${row.domains.join(', ')}; ${row.inject}; secret kept)`);
  if (domains !== undefined) for (const line of overlapWarnings(id, domains, listGrants(services))) io.err(line);
  return 0;
}

export function parseSecret(type: GrantType, input: string) {
  try {
    return parseMaterial(type, input);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}
