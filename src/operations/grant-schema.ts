// What `keyway grants add|set` and the admin API take, derived from the grant's own fields
// (config/grant-fields.ts), and its refusals in the caller's words. Loaded on first use
// (operations/grants.ts): zod stays out of the proxy process until a grant is written through it.
import { z } from 'zod';
import { grantFields, grantId, labelsSchema } from '../config/grant-fields.ts';
import { fieldName, MalformedInput, usage, type Caller } from './fields.ts';

/** A secret given when a grant is added or its secret set: the value itself, never a reference. */
export const secretInput = z.union([z.string(), z.record(z.string(), z.unknown())]).meta({
  description: 'Write-only. A string for api_key, bearer and basic (user:password); an object for oauth2, client_credentials and basic',
  writeOnly: true,
});

/** A new grant: the grant's fields, its id, labels and (write-only) secret. */
export const grantCreateInput = z.strictObject({ id: grantId, ...grantFields.shape, labels: labelsSchema.optional(), secret: secretInput.optional() });

/** A change: any of these fields, each replacing what the grant has (no defaults: absent means unchanged). */
export const grantChangeInput = z.strictObject({
  domains: grantFields.shape.domains.optional(),
  inject: grantFields.shape.inject,
  labels: labelsSchema.optional(),
  allow_range: grantFields.shape.allow_range.unwrap().optional(),
  require_purpose: grantFields.shape.require_purpose.unwrap().optional(),
  mcp: grantFields.shape.mcp,
});

/** The body of PUT /api/grants/{grant}/secret. */
export const secretSetInput = z.strictObject({ secret: secretInput });

export type GrantCreateInput = z.input<typeof grantCreateInput>;
export type GrantChangeInput = z.input<typeof grantChangeInput>;

/** The input checked against `schema`, or a usage error naming the first thing wrong as the caller wrote it. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, caller: Caller): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues;
  // An unknown field first: the rest of the body may have been meant for another route.
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (!issue) throw usage('the input is not valid');
  const message = describe(issue, input, caller, schema);
  throw isShape(issue, input) ? new MalformedInput(message) : usage(message);
}

/** The body's shape, not a rule of the grant: zod's own type checks, unknown fields, a required field left out. */
function isShape(issue: z.core.$ZodIssue, input: unknown): boolean {
  if (issue.code === 'unrecognized_keys') return true;
  if (issue.code === 'invalid_value') return valueAt(input, issue.path) === undefined;
  return (issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.message.startsWith('Invalid input');
}

function describe(issue: z.core.$ZodIssue, input: unknown, caller: Caller, schema: z.ZodType): string {
  const where = nameOf(issue.path, input, caller);
  if (issue.code === 'unrecognized_keys') {
    const known = Object.keys(shapeAt(schema, issue.path));
    const keys = issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ');
    return `${where ? `${where}: ` : ''}unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}; expected ${known.join(', ')}`;
  }
  // A map's key that breaks its rule: the map is named, not the key (it is what is wrong).
  if (issue.code === 'invalid_key') return `${nameOf(issue.path.slice(0, -1), input, caller)}: ${issue.issues[0]?.message ?? 'not a valid name'}`;
  const missing = valueAt(input, issue.path) === undefined;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    // The command line names the choices for a flag left out (`--type`); a JSON body says it is required.
    return missing && caller === 'api' ? `${where}: required` : `${where}: expected one of ${issue.values.map(String).join(', ')}`;
  }
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) return `${where}: ${missing ? 'required' : expected(issue.expected)}`;
  if (issue.code === 'invalid_union') {
    const options = issue.errors.flatMap((option) => (option[0]?.code === 'invalid_type' ? [noun(option[0].expected)] : []));
    return `${where}: expected ${options.join(' or ')}`;
  }
  // A message that reads on from the name ("must contain {secret}") follows it without a colon.
  return issue.message.startsWith('must ') ? `${where} ${issue.message}` : `${where}: ${issue.message}`;
}

const NOUNS: Record<string, string> = { array: 'a list', boolean: 'true or false', object: 'an object', record: 'an object' };
const noun = (type: string) => NOUNS[type] ?? `a ${type}`;
const expected = (type: string) => `expected ${noun(type)}`;

/**
 * A field as the caller wrote it: `inject.format` in a JSON body is `--format` on the command line;
 * a label is `labels team` (`--label team`); the id is the grant id itself. List positions are left out.
 */
function nameOf(path: readonly PropertyKey[], input: unknown, caller: Caller): string {
  const names = path.filter((p): p is string => typeof p === 'string');
  const [field, key] = names;
  const id = valueAt(input, ['id']);
  if (field === 'id' && typeof id === 'string') return `grant id ${JSON.stringify(id.slice(0, 64))}`;
  if (field === 'sign' && caller === 'cli') return `--sign${names.length > 1 ? ` ${names.slice(1).join('.')}` : ''}`;
  if (field === 'labels') return `${caller === 'cli' ? '--label' : 'labels'}${key === undefined ? '' : ` ${key}`}`;
  return names.length === 0 ? '' : fieldName(names.join('.'), caller);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** The fields of the object at `path` in an object schema (through optional wrappers). */
function shapeAt(schema: z.ZodType, path: readonly PropertyKey[]): Record<string, unknown> {
  let current: z.ZodType | undefined = schema;
  for (const seg of [...path, null]) {
    while (current instanceof z.ZodOptional || current instanceof z.ZodDefault) current = current.unwrap() as z.ZodType;
    if (!(current instanceof z.ZodObject)) return {};
    if (seg === null) return current.shape;
    current = current.shape[String(seg)] as z.ZodType | undefined;
  }
  return {};
}
