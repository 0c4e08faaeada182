// The OpenAPI schemas of a grant as the admin API takes and shows it, derived from the zod schemas
// (z.toJSONSchema): what a write takes is exactly what operations/grant-schema.ts checks. Loaded
// by the first GET /api/openapi.json (openapi.ts), so zod stays out of the proxy process until then.
import { z } from 'zod';
import { grantFields, labelsSchema } from '../../config/grant-fields.ts';
import { grantChangeInput, grantCreateDocument, secretSetInput } from '../../operations/grant-schema.ts';

const nullableString = z.string().nullable();

/** A grant as listings show it (credentials/grant-listing.ts): never a secret, only whether one is set. */
const grantListing = z.object({
  id: z.string(),
  type: grantFields.shape.type,
  domains: z.array(z.string()),
  status: z.enum(['active', 'needs_reconnect', 'revoked']),
  display_status: z.enum(['active', 'expiring', 'needs_reconnect', 'revoked', 'no secret', 'waiting_for_login']),
  status_detail: z.string(),
  source: z.enum(['config', 'store']),
  inject: z.string().meta({ description: 'How the secret goes on the wire, in words' }),
  provider: nullableString,
  account: nullableString,
  secret: z.enum(['set', 'missing']),
  secret_from: nullableString.meta({
    description:
      'Where the secret comes from: store, env:NAME, file:PATH, "cmd: PROG" (a command in the config; its arguments are never shown), or "SOURCE: ITEM#FIELD" (a secret source; last_refreshed_at is when it was last fetched)',
  }),
  scopes: z.array(z.string()).nullable(),
  token_expires_at: nullableString,
  last_refreshed_at: nullableString,
  role: nullableString.meta({ description: 'aws_sigv4 with assume_role: the role ARN keyway signs as' }),
  role_expires_at: nullableString.meta({ description: "When the role's temporary credentials keyway holds expire" }),
  key_id: nullableString.meta({ description: 'aws_sigv4 and hmac grants in the store: the key id (an AWS access key id), never the secret' }),
  client_certificate: z
    .object({ subject: z.string(), expires_at: z.string() })
    .nullable()
    .meta({ description: 'The client certificate the grant presents (mTLS): subject and notAfter, never the key' }),
  client_certificate_expires_at: nullableString,
  last_used_at: nullableString,
  allow_http: grantFields.shape.allow_http.unwrap(),
  allow_range: grantFields.shape.allow_range.unwrap(),
  require_purpose: grantFields.shape.require_purpose.unwrap(),
  model_api: grantFields.shape.model_api
    .unwrap()
    .nullable()
    .meta({ description: 'How its model answers are metered for spend: a vendor’s wire format, or none; null: the vendors’ own hosts only' }),
  labels: labelsSchema,
  leases: z.array(z.object({ agent: z.string(), state: z.enum(['active', 'expired', 'revoked']), expires_at: z.string() })),
  captured: z
    .array(
      z.object({
        agent: z.string(),
        login: z.string(),
        fields: z.array(z.string()),
        endpoint: z.string(),
        captured_at: z.string(),
        expires_at: z.string().optional(),
        last_used_at: nullableString,
      }),
    )
    .nullable()
    .meta({
      description:
        'login_capture: each login captured, by agent: the fields held, the token endpoint, when captured, when the access token expires and when last used. Never a value or a placeholder. Null for other types',
    }),
});

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  // Checks JSON Schema cannot say (a domain's breadth, {secret} in a format) stay in the text the API answers with.
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  return rest;
}

/** The components /api/openapi.json refers to (`#/components/schemas/Grant` and the rest). */
export function grantSchemas(): Record<string, unknown> {
  return {
    Grant: jsonSchema(grantListing, 'output'),
    GrantCreate: jsonSchema(grantCreateDocument, 'input'),
    GrantChange: jsonSchema(grantChangeInput, 'input'),
    GrantSecret: jsonSchema(secretSetInput, 'input'),
  };
}
