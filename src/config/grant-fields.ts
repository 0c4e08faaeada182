import { z } from 'zod';
import { unsafeDisplayText } from './display-text.ts';
import { parseDomainPatternStrict } from './domain-breadth.ts';
import { GRANT_ID, GRANT_TYPES } from './ids.ts';
import { parseByteSize } from './byte-size.ts';
import { hmacSignSchema } from './hmac/sign-schema.ts';
import { parseDuration } from './duration.ts';
import { globSyntaxError } from './rule-syntax.ts';

// A grant's fields, described once. The config's grant (schema.ts) and what `keyway grants add|set`
// and the admin API take (operations/grant-schema.ts) are built from these, and the admin API's
// OpenAPI schemas are derived from those (z.toJSONSchema, admin/api/grant-schemas.ts).

/** A check from a function that says why a value is refused (undefined: it is fine). */
export function messageCheck(why: (text: string) => string | undefined) {
  return (ctx: z.core.ParsePayload<string>) => {
    const message = why(ctx.value);
    if (message !== undefined) ctx.issues.push({ code: 'custom', input: ctx.value, message });
  };
}

/** A domain pattern as written (`api.github.com`, `*.example.com`): syntax and breadth checked. */
export const domainText = z.string().check(
  messageCheck((text) => {
    const parsed = parseDomainPatternStrict(text);
    return typeof parsed === 'string' ? parsed : undefined;
  }),
);

export const grantId = z.string().regex(GRANT_ID, 'expected a-z, 0-9 and - (starting with a letter or digit), up to 63 characters');

export const injectSchema = z
  .strictObject({
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name')
      .optional(),
    // A pattern rather than .includes(), which JSON Schema has no word for (z.toJSONSchema).
    format: z
      .string()
      .regex(/\{secret\}/, 'must contain {secret}')
      .check(messageCheck(unsafeDisplayText))
      .optional(),
    query: z.string().min(1).optional(),
    // The grant's placeholder (keyway-placeholder-<id>) is also replaced by the secret inside
    // request bodies and client WebSocket text messages (credentials/body-swap, proxy/stages/body-swap.ts).
    // {fields: [token, …]}: only in these fields (a JSON member's or form pair's name): the hardened
    // choice, since with body: true an agent can put the secret in any field, one the API may publish.
    body: z.union([z.boolean(), z.strictObject({ fields: z.array(z.string().min(1).max(200)).min(1).max(64) })]).optional(),
  })
  .meta({
    description:
      'header (with format, e.g. "token {secret}") or query; absent: the type’s default. body: true also swaps keyway-placeholder-<id> in bodies (alone: in bodies only); body: {fields: [NAME…]} only in those JSON members and form fields',
  });

const LABEL_KEY = /^[a-z0-9][a-z0-9._/-]{0,62}$/;
const MAX_LABELS = 32;
const MAX_LABEL_VALUE = 256;
const labelValue = `expected a string of at most ${MAX_LABEL_VALUE} characters`;

/**
 * Labels: a small free-form map for people and scripts (`team: payments`). Not secret, so never a
 * place for one: they are shown in every listing. A grant kept in the store has them.
 */
export const labelsSchema = z
  .record(
    z.string().regex(LABEL_KEY, 'a label name is a-z, 0-9, ".", "_", "/" and "-" (up to 63 characters)'),
    z.string({ error: labelValue }).max(MAX_LABEL_VALUE, labelValue).check(messageCheck(unsafeDisplayText)),
    { error: 'expected an object of string values' },
  )
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`)
  .meta({ description: 'Free-form names; not secret' });

/** A region or service name as AWS writes them (eu-west-1, s3, execute-api). */
const awsName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a name such as eu-west-1 or s3 (a-z, 0-9 and -)');

const byteSizeText = z.string().refine((text) => parseByteSize(text) !== undefined, {
  error: (issue) => `expected a size such as 16MiB, 512KiB or a number of bytes, got "${String(issue.input).slice(0, 40)}"`,
});

// A presigned URL keyway signs lives at most this long (1 second to SigV4's week).
const presignExpiry = z.string().refine(
  (text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms >= 1000 && ms <= 7 * 24 * 3_600_000 && ms % 1000 === 0;
  },
  { error: (issue) => `expected a duration from 1s to 7d such as 15m, got "${String(issue.input).slice(0, 40)}"` },
);

// STS takes DurationSeconds from 900 (15 minutes) to 43200 (12 hours; the role's own maximum may be lower).
const ROLE_MIN_MS = 15 * 60_000;
const ROLE_MAX_MS = 12 * 3_600_000;
const roleDuration = z.string().refine(
  (text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms >= ROLE_MIN_MS && ms <= ROLE_MAX_MS && ms % 1000 === 0;
  },
  { error: (issue) => `expected a duration from 15m to 12h such as 1h, got "${String(issue.input).slice(0, 40)}"` },
);

function stsEndpointOk(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

/** aws_sigv4's assume_role: keyway signs with the role's temporary credentials, which it gets from STS with the stored key. */
export const assumeRoleSchema = z.strictObject({
  role_arn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'expected a role ARN such as arn:aws:iam::123456789012:role/NAME'),
  duration: roleDuration.default('1h'),
  // Not a secret (AWS calls it an identifier), but it goes only to STS.
  external_id: z
    .string()
    .regex(/^[\w+=,.@:/-]{2,1224}$/, 'expected 2 to 1224 of a-z, A-Z, 0-9 and +=,.@:/-')
    .optional(),
  session_name: z
    .string()
    .regex(/^[\w+=,.@-]{2,64}$/, 'expected 2 to 64 of a-z, A-Z, 0-9 and +=,.@-')
    .optional(),
});

/** What every grant has, wherever it is written; the secret differs (a reference in the config, the value when added). */
export const grantFields = z.strictObject({
  type: z.enum(GRANT_TYPES),
  domains: z
    .array(domainText, { error: (issue) => (issue.input === undefined ? 'expected at least one domain' : undefined) })
    .min(1, 'expected at least one domain'),
  inject: injectSchema.optional(),
  provider: z.string().optional(),
  allow_http: z.boolean().default(false),
  // Range and If-Range go upstream on injected requests only with this (proxy/headers.ts): an
  // upstream that echoes the secret could otherwise hand it out in slices the leak guard misses.
  allow_range: z.boolean().default(false),
  // Every request through this grant must say why (X-Keyway-Purpose): 400 purpose_required without.
  require_purpose: z.boolean().default(false),
  // aws_sigv4 only (credentials/signing/aws): the scope to sign for (else from the host name, else
  // the client's own scope), the regions and services a request may be signed for, and the largest
  // body keyway holds to hash it.
  region: awsName.optional(),
  service: awsName.optional(),
  regions: z.array(awsName).min(1, 'expected at least one region (leave regions out for any)').optional(),
  services: z.array(awsName).min(1, 'expected at least one service (leave services out for any)').optional(),
  max_signed_body: byteSizeText.optional(),
  // The longest a presigned URL keyway signs may live, whatever X-Amz-Expires the agent asked for:
  // an upstream that echoes the URL would otherwise hand the agent a credential for up to a week.
  max_presign_expiry: presignExpiry.optional(),
  // hmac only (credentials/signing/hmac): the scheme, a preset or described as data.
  sign: hmacSignSchema.optional(),
  // google_service_account only (credentials/providers/google-service-account.ts): the scopes its
  // tokens are asked for, and the user it acts as (domain-wide delegation).
  scopes: z.array(z.string().min(1).max(500).regex(/^\S+$/, 'expected a scope without spaces')).min(1, 'expected at least one scope').max(100).optional(),
  subject: z
    .string()
    .regex(/^[^\s@]{1,64}@[^\s@]{1,255}$/, 'expected the email address of the user to act as')
    .optional(),
  // github_app only (credentials/providers/github-app.ts): the API that mints installation tokens
  // (GitHub Enterprise Server: https://HOST/api/v3), and what to narrow each token to.
  api_url: z.string().refine(httpsUrlOk, 'expected an https:// URL with no user, query or fragment, such as https://api.github.com').optional(),
  repositories: z
    .array(z.string().regex(/^[\w.-]{1,100}$/, 'expected a repository name (without its owner)'))
    .min(1)
    .max(500)
    .optional(),
  permissions: z.record(z.string().regex(/^[a-z_]{1,64}$/, 'expected a permission name such as contents'), z.enum(['read', 'write', 'admin'])).optional(),
  // The role to sign as, and the STS endpoint that issues its credentials (default: AWS's global one).
  assume_role: assumeRoleSchema.optional(),
  // Paths that are MCP endpoints (Streamable HTTP): keyway reads each JSON-RPC message posted there
  // and judges tools/call by the agent's tools/args/mcp_methods rules (src/mcp/), and filters
  // tools/list answers to what the agent may call. max_body: the largest request body it reads.
  mcp: z
    .strictObject({
      paths: z
        .array(z.string().check(messageCheck(globSyntaxError)))
        .min(1, 'expected at least one path, such as /mcp')
        .max(32),
      max_body: byteSizeText.optional(),
    })
    .optional(),
  sts_endpoint: z
    .string()
    .refine(stsEndpointOk, 'expected an https:// URL with no user, query or fragment, such as https://sts.eu-west-1.amazonaws.com')
    .optional(),
});

/** Fields only an aws_sigv4 grant may have. */
export const AWS_GRANT_FIELDS = ['region', 'service', 'regions', 'services', 'max_signed_body', 'max_presign_expiry', 'assume_role', 'sts_endpoint'] as const;

type MintedKey = 'scopes' | 'subject' | 'api_url' | 'repositories' | 'permissions';

/**
 * scopes and subject belong to a google_service_account grant (which needs scopes), api_url,
 * repositories and permissions to a github_app grant: what is wrong, by key.
 */
export function googleFieldProblems(grant: { type: string } & Partial<Record<MintedKey, unknown>>): Array<{ key: MintedKey; text: string }> {
  const problems: Array<{ key: MintedKey; text: string }> = [];
  if (grant.type === 'google_service_account' && grant.scopes === undefined) {
    problems.push({ key: 'scopes', text: 'a google_service_account grant needs the scopes its tokens are for' });
  }
  const owners: Record<MintedKey, string> = {
    scopes: 'google_service_account',
    subject: 'google_service_account',
    api_url: 'github_app',
    repositories: 'github_app',
    permissions: 'github_app',
  };
  for (const [key, owner] of Object.entries(owners) as Array<[MintedKey, string]>) {
    if (grant[key] !== undefined && grant.type !== owner) problems.push({ key, text: `${key} belongs to a ${owner} grant` });
  }
  return problems;
}

function httpsUrlOk(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}
