import { displaySafe } from '../../config/display-text.ts';
import type { GrantListing } from '../../credentials/grant-listing.ts';
import { setSecretCommand } from '../../credentials/grant-display.ts';
import type { CommandIO } from '../io.ts';

// `keyway grants show ID` for a person: words, not field names (--json keeps the field names).

const LABELS: ReadonlyArray<[keyof GrantListing, string]> = [
  ['id', 'Grant'],
  ['type', 'Type'],
  ['display_status', 'Status'],
  ['domains', 'Domains'],
  ['inject', 'Injected as'],
  ['secret', 'Secret'],
  ['provider', 'OAuth provider'],
  ['account', 'Account'],
  ['scopes', 'Scopes'],
  ['token_expires_at', 'Token expires'],
  ['key_id', 'Key id'],
  ['client_certificate', 'Client certificate'],
  ['role', 'AWS role'],
  ['role_expires_at', 'Role credentials expire'],
  ['last_refreshed_at', 'Last refreshed'],
  ['last_used_at', 'Last used'],
  ['allow_http', 'Plain HTTP'],
  ['allow_range', 'Range requests'],
  ['require_purpose', 'Purpose'],
  ['model_api', 'Model API (spend)'],
  ['mcp_paths', 'MCP endpoints'],
  ['leases', 'Agent leases'],
  ['captured', 'Captured logins'],
  ['labels', 'Labels'],
  ['source', 'Defined in'],
];

function value(row: GrantListing, key: keyof GrantListing): string {
  switch (key) {
    case 'secret':
      if (row.secret === 'set' && row.secret_from?.startsWith('cmd: '))
        return `printed by the command ${row.secret_from.slice(5)} (never shown; its arguments are in the config)`;
      if (row.secret === 'set') return row.source === 'config' && row.secret_from ? `set (never shown), from ${row.secret_from}` : 'set (never shown)';
      return row.source === 'config' ? `not set (grants.${row.id}.secret in the config)` : `not set (${setSecretCommand(row.id, row.type)})`;
    case 'allow_http':
      return row.allow_http ? 'allowed' : 'refused (HTTPS only)';
    case 'allow_range':
      return row.allow_range ? 'passed on (weakens the leak guard)' : 'Range and If-Range dropped';
    case 'require_purpose':
      return row.require_purpose ? 'required (X-Keyway-Purpose)' : 'optional';
    case 'model_api':
      return row.model_api === null ? "the vendors' own hosts only" : row.model_api === 'none' ? 'never metered' : `metered as ${row.model_api}`;
    case 'mcp_paths':
      return row.mcp_paths.length === 0 ? 'none' : `${row.mcp_paths.join(', ')} (each message judged by MCP rules)`;
    case 'source':
      return row.source === 'config' ? 'the config file' : 'the store (keyway grants add / connect)';
    case 'display_status':
      return row.status_detail === row.display_status ? row.display_status : `${row.display_status} (${row.status_detail})`;
    case 'labels': {
      const pairs = Object.entries(row.labels);
      return pairs.length === 0 ? 'none' : pairs.map(([k, v]) => `${k}=${v}`).join(', ');
    }
    case 'client_certificate':
      return row.client_certificate === null ? '-' : `${row.client_certificate.subject}, expires ${row.client_certificate.expires_at}`;
    case 'leases':
      return row.leases.length === 0 ? 'none' : row.leases.map((l) => `${l.agent} ${l.state} until ${l.expires_at}`).join('; ');
    case 'captured':
      if (row.captured === null) return '-';
      if (row.captured.length === 0) return 'none yet (its agents log in through keyway)';
      return row.captured
        .map(
          (c) =>
            `${c.agent}: ${c.fields.join(', ')} from ${c.endpoint}, captured ${c.captured_at}, expires ${c.expires_at ?? 'unknown'}, last used ${c.last_used_at ?? 'never'}`,
        )
        .join('; ');
    default: {
      const v = row[key];
      if (v === null || v === undefined) return key === 'last_used_at' || key === 'last_refreshed_at' ? 'never' : '-';
      return Array.isArray(v) ? v.join(', ') : String(v);
    }
  }
}

export function printGrant(io: CommandIO, row: GrantListing): void {
  const width = Math.max(...LABELS.map(([, label]) => label.length)) + 2;
  // Values hold what people and providers named (labels, accounts): shown with no control or bidi characters.
  // A grant that assumes no role has no role lines.
  // A grant that signs with no key id has no key id line.
  const shown = LABELS.filter(
    ([key]) =>
      !(row.role === null && (key === 'role' || key === 'role_expires_at')) &&
      !(row.key_id === null && key === 'key_id') &&
      !(row.client_certificate === null && key === 'client_certificate'),
  );
  for (const [key, label] of shown) io.out(`${`${label}:`.padEnd(width)}${displaySafe(value(row, key))}`);
}
