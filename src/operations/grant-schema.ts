// What `keyway grants add|set` and the admin API take, derived from the grant's own fields
// (config/grant-fields.ts), and its refusals in the caller's words. Loaded on first use
// (operations/grants.ts): zod stays out of the proxy process until a grant is written through it.
import { nearest } from '../config/messages.ts';
import { z } from 'zod';
import { grantFields, grantId, grantUnion, labelsSchema } from '../config/grant-fields.ts';
import { belongsTo, keyOwnersAt, knownKeysAt } from '../config/messages.ts';
import { fieldName, MalformedInput, usage, type Caller } from './fields.ts';

/** A secret given when a grant is added or its secret set: the value itself, never a reference. */
export const secretInput = z.union([z.string(), z.record(z.string(), z.unknown())]).meta({
  description: 'Write-only. A string for api_key, bearer and basic (user:password); an object for oauth2, client_credentials and basic',
  writeOnly: true,
});

/** A new grant: its type's fields (a key of another type is refused, naming its owner), its id, labels and (write-only) secret. */
export const grantCreateInput = grantUnion({ id: grantId, labels: labelsSchema.optional(), secret: secretInput.optional() });

/** The same, as the OpenAPI document shows it: every type's keys in one object (admin/api/grant-schemas.ts). */
export const grantCreateDocument = z.strictObject({ id: grantId, ...grantFields.shape, labels: labelsSchema.optional(), secret: secretInput.optional() });

/** A change: any of these fields, each replacing what the grant has (no defaults: absent means unchanged). */
export const grantChangeInput = z.strictObject({
  domains: grantFields.shape.domains.optional(),
  inject: grantFields.shape.inject,
  labels: labelsSchema.optional(),
  allow_range: grantFields.shape.allow_range.unwrap().optional(),
  require_purpose: grantFields.shape.require_purpose.unwrap().optional(),
  model_api: grantFields.shape.model_api,
  mcp: grantFields.shape.mcp,
});

/** The body of PUT /api/grants/{grant}/secret. */
export const secretSetInput = z.strictObject({ secret: secretInput });

export type GrantCreateInput = z.input<typeof grantCreateInput>;
export type GrantChangeInput = z.input<typeof grantChangeInput>;

/** The input checked against `schema`, or a usage error naming the first thing wrong as the caller wrote it. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, caller: Caller): z.output<S> {
  const result = schema.safeParse(withoutUnset(input));
  if (result.success) return result.data;
  const issues = result.error.issues;
  // An unknown field first: the rest of the body may have been meant for another route.
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (!issue) throw usage('the input is not valid');
  const message = describe(issue, input, caller, schema);
  throw isShape(issue, input) ? new MalformedInput(message) : usage(message);
}

/**
 * The command line passes every flag it knows, those not given as undefined (a JSON body has no
 * undefined): a key that is not given is not there, so a type's schema does not take an unset
 * --region for a key of another type.
 */
function withoutUnset(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}

/** The body's shape, not a rule of the grant: zod's own type checks, unknown fields, a required field left out. */
function isShape(issue: z.core.$ZodIssue, input: unknown): boolean {
  if (issue.code === 'unrecognized_keys') return true;
  if (issue.code === 'invalid_value' || isDiscriminator(issue)) return valueAt(input, issue.path) === undefined;
  return (issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.message.startsWith('Invalid input');
}

function describe(issue: z.core.$ZodIssue, input: unknown, caller: Caller, schema: z.ZodType): string {
  const where = nameOf(issue.path, input, caller);
  if (issue.code === 'unrecognized_keys') {
    const path = issue.path.map(String);
    // A key of another type (--scopes on a bearer grant): the type it belongs to.
    const owned = issue.keys.find((key) => keyOwnersAt(schema, path, input, key).length > 0);
    if (owned !== undefined) return `${nameOf([...issue.path, owned], input, caller)}: ${belongsTo(owned, keyOwnersAt(schema, path, input, owned))}`;
    const known = knownKeysAt(schema, path, input);
    const keys = issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ');
    return `${where ? `${where}: ` : ''}unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}; expected ${known.join(', ')}`;
  }
  // A map's key that breaks its rule: the map is named, not the key (it is what is wrong).
  if (issue.code === 'invalid_key') return `${nameOf(issue.path.slice(0, -1), input, caller)}: ${issue.issues[0]?.message ?? 'not a valid name'}`;
  const missing = valueAt(input, issue.path) === undefined;
  const choices = issue.code === 'invalid_value' && 'values' in issue ? issue.values : isDiscriminator(issue) ? issue.options : undefined;
  if (choices !== undefined) {
    // The command line names the choices for a flag left out (`--type`); a JSON body says it is required.
    if (missing && caller === 'api') return `${where}: required`;
    // A near miss (--type berer): the choice it meant first. The value itself is not repeated.
    const given = valueAt(input, issue.path);
    const near = typeof given === 'string' ? nearest(given, choices.map(String)) : undefined;
    return `${where}: expected one of ${choices.map(String).join(', ')}${near === undefined ? '' : `; did you mean ${near}?`}`;
  }
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) return `${where}: ${missing ? 'required' : expected(issue.expected)}`;
  if (issue.code === 'invalid_union') {
    const options = issue.errors.flatMap((option) => (option[0]?.code === 'invalid_type' ? [noun(option[0].expected)] : []));
    return `${where}: expected ${options.join(' or ')}`;
  }
  // A message that reads on from the name ("must contain {secret}") follows it without a colon.
  return issue.message.startsWith('must ') ? `${where} ${issue.message}` : `${where}: ${issue.message}`;
}

/** A grant's `type` that no type's schema has (grantUnion): the types are its options. */
function isDiscriminator(issue: z.core.$ZodIssue): issue is z.core.$ZodIssueInvalidUnion & { options: unknown[] } {
  return issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options);
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
