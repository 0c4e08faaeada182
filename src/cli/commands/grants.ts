import type { z } from 'zod';
import { GRANT_TYPES } from '../../config/index.ts';
import { GRANT_TYPE_FIELDS } from '../../credentials/types/fields.ts';
import { listGrants } from '../../credentials/grant-listing.ts';
import { setSecretCommand } from '../../credentials/grant-display.ts';
import { addGrant, removeGrant, showGrant, updateGrant } from '../../operations/grants.ts';
import type { Services } from '../../open-home.ts';
import { parse, type Args } from '../args.ts';
import type { Command } from '../command.ts';
import { audited, fieldsSet } from '../audit-change.ts';
import { servicesFor } from '../context.ts';
import { printJson, printTable, usageError, type CommandIO } from '../io.ts';
import { printGrant } from './grant-show.ts';
import { readAwsProfile } from '../aws-profile.ts';

const USAGE = `keyway grants list [--json]
keyway grants show ID [--json]
keyway grants rm ID
keyway grants add ID --type T --domains D[,D…] [--header H --format F | --query P] [--body] [--provider P]
                     [--allow-http] [--allow-range] [--require-purpose] [--model-api API] [--mcp-path P[,P…]] [--label K=V]…
                     [--secret-stdin]
keyway grants add ID --type aws_sigv4 --from-aws-profile NAME [--domains D[,D…]] [--region R] [--service S]
keyway grants add ID --type hmac --domains D[,D…] (--sign-preset NAME | --sign JSON) [--secret-stdin]
keyway grants add ID --type google_service_account --domains D[,D…] --scopes S[,S…] [--subject EMAIL] [--secret-stdin]
keyway grants add ID --type T --domains D[,D…] [--KEY VALUE]… [--secret-stdin]   (a type's own keys: --token-endpoint, --audience, --dpop JSON, …)
keyway grants set ID [--domains D[,D…]] [--header H] [--format F | --query P] [--label K=V]…
                     [--allow-range | --no-allow-range] [--require-purpose | --no-require-purpose] [--model-api API]
                     [--mcp-path P[,P…]] [--json]

Types: ${GRANT_TYPES.join(', ')}. bearer, oauth2 and client_credentials set
"Authorization: Bearer {secret}"; basic sets "Authorization: Basic …"; api_key needs
--header (with --format, e.g. "token {secret}"), --query or --body. Secret values are never printed.
--body also replaces the grant's placeholder, keyway-placeholder-ID, by its secret in request bodies
(JSON string values, form values, text) and WebSocket text messages (alone: in bodies only).
\`set\` changes a grant's domains or how it is injected and keeps its secret and tokens.
--label K=V names a grant for people and scripts (team=payments; shown in listings, never secret);
on \`set\` it adds or changes one label, and --label K= removes it.
--allow-range passes Range and If-Range upstream on requests keyway injects into (dropped by
default: an upstream that echoes the secret could hand it out in slices the leak guard misses).
--from-aws-profile imports the static key of a profile in the AWS shared files (~/.aws/credentials
and config, or AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE) as an aws_sigv4 grant's secret
(the region comes from each request's host name); --domains defaults to *.amazonaws.com. The key is
never printed.
--region and --service fix an aws_sigv4 grant's signing scope (else read from each request's host).
--sign-preset names an hmac grant's scheme (binance, kraken, coinbase_exchange, okx); --sign gives a
scheme as a JSON object, the config's sign: block (algorithm, key_encoding, string, timestamp,
nonce, output, key_id).
--require-purpose refuses a request through the grant that does not say why in X-Keyway-Purpose
(400 purpose_required); the audit line records the purpose.
--model-api anthropic|openai|gemini meters the grant's model answers in that vendor's wire format
(a gateway, Azure OpenAI, a self-hosted OpenAI-compatible server); none never meters them. Without
it, only the vendors' own hosts are metered (docs/spend.md).
--mcp-path marks paths (globs) as MCP endpoints: each JSON-RPC message posted there is judged by the
agents' tools/args/mcp_methods rules (docs/mcp.md).
Two grants whose domains overlap are told apart per request by the agent's binding
(keyway agents add ID --grants G) or the header X-Keyway-Grant: ID; add and set warn about it.`;

/** Each subcommand and the words after it (args.ts refuses any other, and any word more). */
const WORDS = { list: 0, show: 1, add: 1, set: 1, rm: 1 } as const;

/** The flags named above for a type's own keys; every other key of a type is a flag of its own name. */
const NAMED_KEYS = new Set(['region', 'service', 'sign', 'scopes', 'subject']);
const flagOf = (key: string): string => key.replace(/_/g, '-');
const TYPE_KEYS = [...new Set(GRANT_TYPES.flatMap((type) => Object.keys(GRANT_TYPE_FIELDS[type].shape)))].filter((key) => !NAMED_KEYS.has(key));
const TYPE_FLAGS = Object.fromEntries(TYPE_KEYS.map((key) => [flagOf(key), { type: 'string' as const }]));

/**
 * A type's own keys given as flags (--token-endpoint URL, --audience A, --dpop '{"alg":"EdDSA"}'):
 * JSON where the value is an object or list, a comma-separated list where the key takes one, else
 * the text. The operation checks them against the type's fields, as the config's and the API's are.
 */
function typeFlags(args: Args, type: string | undefined): Record<string, unknown> {
  const shape = (GRANT_TYPE_FIELDS as Record<string, { shape: Record<string, z.ZodType> }>)[type ?? '']?.shape;
  const out: Record<string, unknown> = {};
  for (const key of TYPE_KEYS) {
    const text = args.string(flagOf(key));
    if (text === undefined) continue;
    if (shape?.[key] === undefined)
      throw usageError(
        `--${flagOf(key)} is not a ${type ?? 'grant'} grant's (it belongs to ${GRANT_TYPES.filter((t) => key in GRANT_TYPE_FIELDS[t].shape).join(' or ')})`,
      );
    if (/^\s*[{[]/.test(text)) {
      try {
        out[key] = JSON.parse(text);
      } catch {
        throw usageError(`--${flagOf(key)}: expected JSON`);
      }
      continue;
    }
    const list = text.split(',').map((part) => part.trim());
    out[key] = !shape[key].safeParse(text).success && shape[key].safeParse(list).success ? list : text;
  }
  return out;
}

// Parse flags, call the operation (src/operations/grants.ts, shared with the admin API), print.
export const grants: Command = {
  name: 'grants',
  usage: USAGE,
  async run(argv, io) {
    const args = parse(
      argv,
      {
        type: { type: 'string' },
        domains: { type: 'string' },
        header: { type: 'string' },
        format: { type: 'string' },
        query: { type: 'string' },
        body: { type: 'boolean' },
        provider: { type: 'string' },
        'allow-http': { type: 'boolean' },
        'allow-range': { type: 'boolean' },
        'no-allow-range': { type: 'boolean' },
        'require-purpose': { type: 'boolean' },
        'model-api': { type: 'string' },
        'mcp-path': { type: 'string' },
        'from-aws-profile': { type: 'string' },
        region: { type: 'string' },
        service: { type: 'string' },
        'sign-preset': { type: 'string' },
        scopes: { type: 'string' },
        subject: { type: 'string' },
        sign: { type: 'string' },
        'no-require-purpose': { type: 'boolean' },
        'secret-stdin': { type: 'boolean' },
        label: { type: 'string', multiple: true },
        ...TYPE_FLAGS,
      },
      WORDS,
    );
    const [action, id] = args.positionals;
    const services = await servicesFor(args, io);
    if (action === 'list' || action === undefined) return list(services, args, io);
    if (!id) throw usageError(`grants ${action}: expected a grant id`);
    if (action === 'show') {
      const row = showGrant(services, id);
      if (args.json) printJson(io, row);
      else printGrant(io, row);
      return 0;
    }
    if (action === 'rm') {
      const result = await audited(services, io, { action: 'grants.delete', grant: id }, () => removeGrant(services, id));
      if (args.json) io.out(JSON.stringify(result));
      else if (result.captured_dropped !== undefined)
        io.out(`dropped ${result.captured_dropped} captured token(s) of grant ${id}; its agents log in again (the grant itself is in the config)`);
      else io.out(`removed grant ${id}`);
      return 0;
    }
    if (action === 'set') return set(services, args, io, id);
    return add(services, args, io, id);
  },
};

function list(services: Services, args: Args, io: CommandIO): number {
  const rows = listGrants(services);
  if (args.json) {
    printJson(io, rows);
    return 0;
  }
  // Both clocks side by side: the token's expiry and each agent's lease.
  const table = rows.map((r) => ({
    ...r,
    status: r.display_status,
    leases: r.leases.map((l) => `${l.agent}:${l.state === 'active' ? l.expires_at : l.state}`),
    // A capture grant's token clock is its logins': the newest access token's expiry among them.
    captured: (r.captured ?? []).map((c) => `${c.agent}:${c.fields.join('+')}`),
    ...(r.captured === null
      ? {}
      : {
          token_expires_at:
            r.captured
              .map((c) => c.expires_at)
              .filter((e) => e !== undefined)
              .sort()
              .pop() ?? null,
        }),
  }));
  const captures = rows.some((r) => r.captured !== null);
  const certs = rows.some((r) => r.client_certificate_expires_at !== null);
  printTable(io, table, [
    'id',
    'type',
    'status',
    'domains',
    'secret_from',
    'scopes',
    'token_expires_at',
    ...(certs ? (['client_certificate_expires_at'] as const) : []),
    'leases',
    ...(captures ? (['captured'] as const) : []),
    'last_refreshed_at',
    'last_used_at',
  ]);
  // The certificate's clock, said in words 14 days ahead (and once it has run out).
  for (const row of rows.filter((r) => r.client_certificate_expires_at !== null && r.status_detail.startsWith('client certificate'))) {
    io.err(`warning: grant ${row.id}: ${row.status_detail}`);
  }
  // A credential the upstream refused the last time it answered (a wrong secret, one revoked there):
  // said here, since the grant's own status cannot know it (issue 86).
  for (const row of rows.filter((r) => r.refused_upstream_at !== null)) {
    io.out(
      `grant ${row.id}: its credential was refused upstream (401 at ${row.refused_upstream_at}): check it, and set it again (${setSecretCommand(row.id, row.type)})`,
    );
  }
  // A login grant holds no secret of its own: it waits for the agent's login through keyway (a login
  // cut short leaves it so, issue 86), and says what fills it, not `secrets set`.
  for (const row of table.filter((r) => r.status === 'waiting_for_login')) io.out(`grant ${row.id}: ${row.status_detail}`);
  for (const row of table.filter((r) => r.status === 'no secret')) {
    io.out(
      row.source === 'config'
        ? `grant ${row.id} has no secret: set grants.${row.id}.secret in the config`
        : `grant ${row.id} has no secret: ${setSecretCommand(row.id, row.type)}`,
    );
  }
  return 0;
}

/** `--label K=V`, repeatable, over `base`; `K=` removes K. Checked by the operation (grant-schema.ts). */
function labelFlags(args: Args, base: Record<string, string> = {}): Record<string, string> | undefined {
  const given = args.each('label');
  if (given.length === 0) return undefined;
  const labels = { ...base };
  for (const pair of given) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw usageError(`--label: expected KEY=VALUE, got "${pair.slice(0, 40)}"`);
    const value = pair.slice(eq + 1);
    if (value === '') delete labels[pair.slice(0, eq)];
    else labels[pair.slice(0, eq)] = value;
  }
  return labels;
}

function injectFlags(args: Args) {
  return { header: args.string('header'), format: args.string('format'), query: args.string('query'), ...(args.flag('body') ? { body: true } : {}) };
}

async function add(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  const profileName = args.string('from-aws-profile');
  if (profileName !== undefined && args.string('type') !== undefined && args.string('type') !== 'aws_sigv4') {
    throw usageError('--from-aws-profile makes an aws_sigv4 grant; leave out --type or give --type aws_sigv4');
  }
  if (profileName !== undefined && args.flag('secret-stdin')) throw usageError('--from-aws-profile or --secret-stdin, not both');
  // Said before the list of what it may be: a person who left it out needs to hear it is missing.
  if (profileName === undefined && args.string('type') === undefined) {
    throw usageError(`--type is missing: a grant needs its type, one of ${GRANT_TYPES.join(', ')} (see keyway grants add --help)`);
  }
  const profile = profileName === undefined ? undefined : await readAwsProfile(profileName, io.env);
  const secret = profile !== undefined ? profile.material : args.flag('secret-stdin') ? await io.readStdin() : undefined;
  const input = {
    id,
    type: profile !== undefined ? 'aws_sigv4' : args.string('type'),
    domains: args.list('domains') ?? (profile !== undefined ? ['*.amazonaws.com'] : undefined),
    inject: injectFlags(args),
    provider: args.string('provider'),
    allow_http: args.flag('allow-http'),
    allow_range: args.flag('allow-range'),
    require_purpose: args.flag('require-purpose'),
    model_api: args.string('model-api'),
    mcp: mcpFlag(args),
    labels: labelFlags(args),
    region: args.string('region'),
    service: args.string('service'),
    sign: signFlags(args),
    scopes: args.list('scopes'),
    // google_service_account's is an email; token_exchange's `identity` or {"secret": REF} as JSON.
    subject: ((text) => (text?.trimStart().startsWith('{') ? (JSON.parse(text) as unknown) : text))(args.string('subject')),
    ...typeFlags(args, args.string('type')),
    secret,
  };
  const { grant, warnings } = await audited(services, io, { action: 'grants.create', grant: id, changed: fieldsSet(input, ['id']) }, () =>
    addGrant(services, input, 'cli'),
  );
  if (args.json) printJson(io, grant);
  else
    io.out(
      `added grant ${id} (${grant.type}, ${grant.domains.join(', ')}; secret ${grant.secret === 'missing' ? `missing: ${setSecretCommand(id, grant.type)}` : 'set'})`,
    );
  for (const line of warnings) io.err(line);
  return 0;
}

/** An hmac grant's scheme: `--sign-preset NAME` or `--sign JSON` (checked by the operation, as the API's `sign`). */
function signFlags(args: Args): unknown {
  const preset = args.string('sign-preset');
  const json = args.string('sign');
  if (preset !== undefined && json !== undefined) throw usageError('--sign-preset or --sign, not both');
  if (preset !== undefined) return { preset };
  if (json === undefined) return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw usageError('--sign: expected a JSON object, e.g. \'{"algorithm":"sha256","string":"{timestamp}{method}{path_query}{body}",…}\'');
  }
}

/** Changes domains or injection in place: the secret, tokens, leases and usage stay. */
async function set(services: Services, args: Args, io: CommandIO, id: string): Promise<number> {
  // Labels given on the command line change one at a time (the API's PATCH replaces the map).
  const labels = labelFlags(args, listGrants(services).find((g) => g.id === id)?.labels);
  if (args.flag('allow-range') && args.flag('no-allow-range')) throw usageError('grants set: --allow-range or --no-allow-range, not both');
  const allowRange = args.flag('allow-range') ? true : args.flag('no-allow-range') ? false : undefined;
  if (args.flag('require-purpose') && args.flag('no-require-purpose')) throw usageError('grants set: --require-purpose or --no-require-purpose, not both');
  const requirePurpose = args.flag('require-purpose') ? true : args.flag('no-require-purpose') ? false : undefined;
  const change = {
    domains: args.list('domains'),
    inject: injectFlags(args),
    labels,
    allow_range: allowRange,
    require_purpose: requirePurpose,
    model_api: args.string('model-api'),
    mcp: mcpFlag(args),
  };
  // false is a change here (--no-allow-range, --no-require-purpose), unlike on add.
  const changed = [
    ...fieldsSet(change, ['allow_range', 'require_purpose']),
    ...(allowRange !== undefined ? ['allow_range'] : []),
    ...(requirePurpose !== undefined ? ['require_purpose'] : []),
  ];
  const { grant, warnings } = await audited(services, io, { action: 'grants.update', grant: id, changed }, () => updateGrant(services, id, change, 'cli'));
  if (args.json) printJson(io, grant);
  else io.out(`changed grant ${id} (${grant.domains.join(', ')}; ${grant.inject}; secret kept)`);
  for (const line of warnings) io.err(line);
  return 0;
}

/** --mcp-path /mcp[,/other]: the grant's MCP endpoints, or undefined when not given. */
function mcpFlag(args: Args): { paths: string[] } | undefined {
  const paths = args.list('mcp-path');
  return paths === undefined ? undefined : { paths };
}
