// The OpenAPI schemas of a grant as the admin API shows and takes it (credentials/grant-listing.ts).

const nullableString = { type: ['string', 'null'] };

export const INJECT_SCHEMA = {
  type: 'object',
  description: 'header (with format, e.g. "token {secret}") or query; absent: the type’s default',
  properties: { header: { type: 'string' }, format: { type: 'string' }, query: { type: 'string' } },
  additionalProperties: false,
};

export const LABELS_SCHEMA = { type: 'object', additionalProperties: { type: 'string', maxLength: 256 }, description: 'Free-form names; not secret' };

export const SECRET_SCHEMA = {
  description: 'Write-only. A string for api_key, bearer and basic (user:password); an object for oauth2, client_credentials and basic',
  oneOf: [{ type: 'string' }, { type: 'object' }],
  writeOnly: true,
};

export const GRANT_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' } },
    status: { type: 'string', enum: ['active', 'needs_reconnect', 'revoked'] },
    display_status: { type: 'string', enum: ['active', 'expiring', 'needs_reconnect', 'revoked', 'no secret'] },
    status_detail: { type: 'string' },
    source: { type: 'string', enum: ['config', 'store'] },
    inject: { type: 'string' },
    provider: nullableString,
    account: nullableString,
    secret: { type: 'string', enum: ['set', 'missing'] },
    scopes: { type: ['array', 'null'], items: { type: 'string' } },
    token_expires_at: nullableString,
    last_refreshed_at: nullableString,
    last_used_at: nullableString,
    allow_http: { type: 'boolean' },
    allow_range: { type: 'boolean' },
    labels: LABELS_SCHEMA,
    leases: {
      type: 'array',
      items: { type: 'object', properties: { agent: { type: 'string' }, state: { type: 'string' }, expires_at: { type: 'string' } } },
    },
  },
};
