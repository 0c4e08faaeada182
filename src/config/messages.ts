import { isPair, isScalar, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { editDistance } from '../edit-distance.ts';

// Config errors in a person's words: one line, the key path first, and what to write instead.
// zod's own wording ("expected string, received number", "Unrecognized key") names types, not
// what keyway wants; these turn each issue into the fix.

type Issue = z.core.$ZodIssue;

/**
 * Every problem of a config, one `path: message` each (an unknown key each), misspelt keys first. A
 * key reported missing where a misspelling of it stands beside it is said once, as the misspelling
 * (`tpye:` is not "type: expected one of …", and `domians:` not also "domains: is required").
 */
export function describeIssues(issues: readonly Issue[], raw: unknown, schema: z.ZodType): string[] {
  const typos: string[] = [];
  const others: Array<{ path: string; line: string }> = [];
  /** Paths of keys a misspelling explains: their "missing" issues are not said again. */
  const explained = new Set<string>();
  for (const issue of issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const { line, near } = unknownKey(path, key, raw, schema);
        typos.push(line);
        if (near !== undefined) explained.add([...path, near].join('.'));
      }
      continue;
    }
    const misspelt = misspeltInstead(path, raw, schema);
    if (misspelt !== undefined) {
      typos.push(misspelt);
      explained.add(path.join('.'));
    } else if (!explained.has(path.join('.'))) {
      // One problem per key: a second check failing on the same value says the same thing again.
      const where = path.join('.');
      if (!others.some((o) => o.path === where)) others.push({ path: where, line: describeIssue(issue, raw, schema) });
    }
  }
  const said = others.filter((o) => !explained.has(o.path)).map((o) => o.line);
  return [...new Set([...typos, ...said])];
}

/** An unknown key's line, and the known key it is near (if one is). */
function unknownKey(path: readonly string[], key: string, raw: unknown, schema: z.ZodType): { line: string; near?: string } {
  const keyPath = [...path, key].join('.');
  const owners = keyOwnersAt(schema, path, raw, key);
  if (owners.length > 0) return { line: `${keyPath}: ${belongsTo(key, owners)}` };
  const known = knownKeysAt(schema, path, raw);
  const near = nearest(key, known);
  if (near === undefined) return { line: `${keyPath}: unknown key (known here: ${known.join(', ')})` };
  return { line: `${keyPath}: unknown key; did you mean ${near}?`, near };
}

/**
 * For a key the schema misses (a grant's `type`, which decides which keys the grant takes, so its
 * unknown keys are never listed): the misspelling of it that stands beside it, said as an unknown key.
 */
function misspeltInstead(path: readonly string[], raw: unknown, schema: z.ZodType): string | undefined {
  const missing = path.at(-1);
  if (missing === undefined || valueAt(raw, path) !== undefined) return undefined;
  const parent = valueAt(raw, path.slice(0, -1));
  if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) return undefined;
  const known = new Set(knownKeysAt(schema, path.slice(0, -1), raw));
  const typo = Object.keys(parent).find((key) => !known.has(key) && key !== missing && nearest(key, [missing]) === missing);
  return typo === undefined ? undefined : `${[...path.slice(0, -1), typo].join('.')}: unknown key; did you mean ${missing}?`;
}

/** `path: message` for one validation issue; `raw` is the parsed YAML, `schema` the config schema. */
export function describeIssue(issue: Issue, raw: unknown, schema: z.ZodType): string {
  const path = issue.path.map(String);
  const where = path.join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownKey(path, key, raw, schema).line).join('; ');
  if (issue.code === 'invalid_type') {
    const value = valueAt(raw, issue.path);
    if (value === undefined) return `${where}: is required`;
    // A custom message set in the schema (durations, addresses) already says what to write.
    if (!issue.message.startsWith('Invalid input')) return `${where}: ${issue.message}, got ${kindOf(value)}`;
    return `${where}: expected ${article(issue.expected)}, got ${kindOf(value)}`;
  }
  if (issue.code === 'invalid_key') {
    // A map key (a grant or agent id) that breaks its rule: say the rule, not "Invalid key in record".
    return `${where}: ${issue.issues[0]?.message ?? 'not a valid id'}`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${where}: expected one of ${issue.values.map(String).join(', ')}${didYouMean(valueAt(raw, issue.path), issue.values.map(String))}`;
  }
  // A discriminated union's key with no option of its value (a grant's type).
  if (issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options)) {
    return `${where}: expected one of ${issue.options.map(String).join(', ')}${didYouMean(valueAt(raw, issue.path), issue.options.map(String))}`;
  }
  return `${where}: ${issue.message}`;
}

function article(expected: string): string {
  if (expected === 'array') return 'a list';
  if (expected === 'object' || expected === 'record') return 'a map of keys';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/** What a YAML value is, without quoting strings (someone may have pasted a secret there). */
function kindOf(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return `a ${typeof value}`;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

interface Def {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
  in?: { _zod: { def: Def } };
  valueType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
  /** A discriminated union's key, and its options. */
  discriminator?: string;
  options?: Array<{ _zod: { def: Def } }>;
}

/** The object schema at this path (record and list entries consume a segment), and its union's other options. */
function objectAt(schema: z.ZodType, path: readonly string[], raw: unknown): { def: Def | undefined; union: Def | undefined } {
  let def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  let value = raw;
  let union: Def | undefined;
  let i = 0;
  for (let guard = 0; guard < 64; guard++) {
    const next = def.innerType ?? def.in;
    if (next) def = next._zod.def;
    else if (def.discriminator !== undefined && def.options) {
      // The option the value chose by its discriminator (a grant's `type`): its keys are the ones known here.
      const chosen = optionFor(def, value);
      if (!chosen) return { def: undefined, union: undefined };
      union = def;
      def = chosen;
    } else if (i >= path.length) return { def: def.shape ? def : undefined, union };
    else if (def.shape) {
      const key = path[i++]!;
      const child = def.shape[key];
      if (!child) return { def: undefined, union: undefined };
      def = child._zod.def;
      value = childOf(value, key);
      union = undefined;
    } else if (def.valueType ?? def.element) {
      def = (def.valueType ?? def.element)!._zod.def;
      value = childOf(value, path[i++]!);
      union = undefined;
    } else return { def: undefined, union: undefined };
  }
  return { def: undefined, union: undefined };
}

function optionFor(union: Def, value: unknown): Def | undefined {
  const wanted = childOf(value, union.discriminator!);
  return union.options!.map((o) => o._zod.def).find((o) => discriminatorOf(o, union.discriminator!) === wanted);
}

function discriminatorOf(option: Def, key: string): unknown {
  const def = option.shape?.[key]?._zod.def as { values?: unknown[] } | undefined;
  return def?.values?.[0];
}

function childOf(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
}

/** The keys an object in the schema takes at this path (in a discriminated union: the option `raw` chose). */
export function knownKeysAt(schema: z.ZodType, path: readonly string[], raw?: unknown): string[] {
  const { def } = objectAt(schema, path, raw);
  return def?.shape ? Object.keys(def.shape) : [];
}

/**
 * A key refused in one option of a discriminated union that other options take: the values of the
 * discriminator that take it (a grant key another type owns: `scopes` belongs to google_service_account).
 */
export function keyOwnersAt(schema: z.ZodType, path: readonly string[], raw: unknown, key: string): string[] {
  const { union } = objectAt(schema, path, raw);
  if (!union) return [];
  return union.options!.map((o) => o._zod.def).flatMap((o) => (o.shape?.[key] ? [String(discriminatorOf(o, union.discriminator!))] : []));
}

/** "belongs to an aws_sigv4 grant", or "… an aws_sigv4 or hmac grant" (grants are the config's one discriminated union). */
export function belongsTo(key: string, owners: readonly string[]): string {
  return `${key} belongs to ${/^[aeiou]/.test(owners[0]!) ? 'an' : 'a'} ${owners.join(' or ')} grant`;
}

/** "; did you mean X?" for a string near one of the choices (never the value itself: it may be a secret), else ''. */
function didYouMean(value: unknown, choices: readonly string[]): string {
  const near = typeof value === 'string' ? nearest(value, choices) : undefined;
  return near === undefined ? '' : `; did you mean ${near}?`;
}

/** The closest candidate by edit distance, when close enough to be a typo (at most a third of the word). */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(word.toLowerCase(), name);
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(word.length / 3)) ? best.name : undefined;
}

/**
 * For a duplicate key at `offset` in the YAML text: its full key path (`proxy.listen`). The yaml
 * package reports the position only; reading the document again with duplicates allowed finds the key.
 */
export function duplicateKeyPath(text: string, offset: number): string | undefined {
  let found: string | undefined;
  visit(parseDocument(text, { uniqueKeys: false }), {
    Pair(_, pair, ancestors) {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return undefined;
      const names = [...ancestors, pair].flatMap((node) => (isPair(node) && isScalar(node.key) ? [String(node.key.value)] : []));
      found = names.join('.');
      return visit.BREAK;
    },
  });
  return found;
}
