import { z } from 'zod';
import { unsafeDisplayText } from './display-text.ts';
import { parseDomainPatternStrict } from './domain-breadth.ts';
import { GRANT_ID, GRANT_TYPES, type GrantType } from './ids.ts';
import { type Fail, GRANT_TYPE_FIELDS, type GrantTypeFields, type GrantView, type TypeShape } from '../credentials/types/fields.ts';
import { byteSizeText } from '../credentials/types/values.ts';
import { globSyntaxError } from './rule-syntax.ts';
import { MODEL_API_HINTS } from './spend.ts';

// A grant's fields, described once: every grant's here, each type's in credentials/types/<type>/fields.ts. The config's
// grant (schema/grants.ts) and what `keyway grants add|set` and the admin API take
// (operations/grant-schema.ts) are built from these (grantUnion), and the admin API's OpenAPI
// schemas are derived from those (z.toJSONSchema, admin/api/grant-schemas.ts).

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

/** What every grant has, whatever its type. */
export const commonGrantShape = {
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
  // How this grant's model answers are metered for spend (issue 63; spend/core/meters/): as Anthropic's,
  // OpenAI's or Gemini's wire format (a gateway, Azure OpenAI, a self-hosted OpenAI-compatible
  // server), or none (never, even on a vendor's own host). Absent: the vendors' own hosts only.
  model_api: z.enum(MODEL_API_HINTS).optional(),
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
};

type CommonShape = typeof commonGrantShape;

/**
 * Every grant's keys and every type's in one flat object: what the OpenAPI document shows a grant
 * may have. What a grant of one type takes is checked by grantUnion's option for that type.
 */
export const grantFields = z.strictObject({
  type: z.enum(GRANT_TYPES),
  ...commonGrantShape,
  ...(everyTypesKeys() as AllTypeShapes),
});

/** Every type's keys in one shape; a key two types take (sign:) is either one's. */
function everyTypesKeys(): Record<string, z.ZodType> {
  const merged: Record<string, z.ZodType> = {};
  for (const type of GRANT_TYPES) {
    for (const [key, schema] of Object.entries(GRANT_TYPE_FIELDS[type].shape as Record<string, z.ZodType>)) {
      const had = merged[key];
      merged[key] = had === undefined || had === schema ? schema : z.union([had, schema]);
    }
  }
  return merged;
}

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type AllTypeShapes = UnionToIntersection<{ [T in GrantType]: TypeShape<T> }[GrantType]>;

/** One type's grant: its type, every grant's keys, its own, and what the caller adds (`extra`). */
type GrantOption<T extends GrantType, E extends z.core.$ZodLooseShape> = z.ZodObject<
  Omit<CommonShape & TypeShape<T>, keyof E> & E & { type: z.ZodLiteral<T> },
  z.core.$strict
>;
type GrantOptions<E extends z.core.$ZodLooseShape> = { [T in GrantType]: GrantOption<T, E> }[GrantType];

/** A check the caller adds to every type's option, knowing the type's own description. */
export type GrantCheck = (grant: GrantView, fields: GrantTypeFields, fail: Fail) => void;

/**
 * A grant schema: one strict object per type, chosen by `type`. A key of another type is refused
 * as unknown here (config/messages.ts names the type it belongs to); each type's own rules run on
 * its option, and `check` (the caller's) on every option.
 */
export function grantUnion<E extends z.core.$ZodLooseShape>(extra: E, check?: GrantCheck) {
  const options = GRANT_TYPES.map((type) => {
    const fields: GrantTypeFields = GRANT_TYPE_FIELDS[type];
    return z.strictObject({ type: z.literal(type), ...commonGrantShape, ...fields.shape, ...extra }).check((ctx) => {
      const grant = ctx.value as GrantView;
      const fail: Fail = (key, message) => ctx.issues.push({ code: 'custom', input: grant, path: [key], message });
      fields.check?.(grant, fail);
      check?.(grant, fields, fail);
    });
  });
  // The union as it is: code that holds a grant narrows on its type to read that type's keys.
  const union = z.discriminatedUnion('type', options as unknown as [GrantOptions<E>, ...GrantOptions<E>[]]);
  return union as unknown as z.ZodType<z.output<typeof union>, z.input<typeof union>>;
}
