// The config reference (docs/configuration.md, "Config reference") made from the schema itself:
// every key path, what it takes and its default, so a key added to the schema and not to the docs
// fails a test (test/unit/config-reference.test.ts) rather than going unsaid. `npm run docs:config`
// writes it. Reads zod's own definitions (`_zod.def`), which zod 4 documents for introspection.
import { formatDuration } from './duration.ts';
import { configSchema } from './schema/config.ts';

interface ZodLike {
  readonly _zod: { readonly def: Readonly<Record<string, unknown>> };
}

interface Row {
  path: string;
  takes: string;
  fallback: string;
}

/** A key of some options of a discriminated union (a grant's type): which ones take it, of how many. */
interface Owners {
  readonly of: number;
  readonly names: Set<string>;
}

const WRAPPERS = new Set(['optional', 'nullable', 'readonly', 'catch', 'nonoptional']);

/** What a leaf takes, in a few words: `string`, `a \| b`, `[string]`, `map of …`. */
function takes(schema: ZodLike, depth = 0): string {
  const def = schema._zod.def;
  const type = def['type'] as string;
  if (depth > 8) return type;
  if (WRAPPERS.has(type) || type === 'default' || type === 'prefault') return takes(def['innerType'] as ZodLike, depth + 1);
  if (type === 'pipe') return takes(def['in'] as ZodLike, depth + 1);
  if (type === 'enum') return Object.values(def['entries'] as Record<string, string>).join(' \\| ');
  if (type === 'literal') return (def['values'] as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
  if (type === 'array') return `[${takes(def['element'] as ZodLike, depth + 1)}]`;
  if (type === 'record') return `map of ${takes(def['valueType'] as ZodLike, depth + 1)}`;
  if (type === 'union') return [...new Set((def['options'] as ZodLike[]).map((o) => takes(o, depth + 1)))].join(' \\| ');
  if (type === 'object') return 'object';
  return type;
}

/** The default a key gets when it is left out, as YAML would say it; empty when there is none. */
function fallback(schema: ZodLike, depth = 0): string {
  const def = schema._zod.def;
  const type = def['type'] as string;
  if (depth > 8) return '';
  if (type === 'default' || type === 'prefault') {
    const value = def['defaultValue'];
    const shown = typeof value === 'function' ? undefined : value;
    if (shown === undefined || (typeof shown === 'object' && shown !== null && !Array.isArray(shown))) return '';
    const text = JSON.stringify(shown);
    return text.length > 40 ? '' : `\`${text}\``;
  }
  if (WRAPPERS.has(type)) return fallback(def['innerType'] as ZodLike, depth + 1);
  if (type === 'pipe') return fallback(def['in'] as ZodLike, depth + 1);
  return '';
}

/** The object schemas inside a value (itself, its union members, a map's values, a list's items), with the path suffix each adds. */
function objectsIn(schema: ZodLike, depth = 0): Array<{ object: ZodLike; suffix: string }> {
  const def = schema._zod.def;
  const type = def['type'] as string;
  if (depth > 8) return [];
  if (type === 'object') return [{ object: schema, suffix: '' }];
  if (WRAPPERS.has(type) || type === 'default' || type === 'prefault') return objectsIn(def['innerType'] as ZodLike, depth + 1);
  if (type === 'pipe') return objectsIn(def['in'] as ZodLike, depth + 1);
  if (type === 'record') return objectsIn(def['valueType'] as ZodLike, depth + 1).map((o) => ({ ...o, suffix: `.ID${o.suffix}` }));
  if (type === 'array') return objectsIn(def['element'] as ZodLike, depth + 1).map((o) => ({ ...o, suffix: `[]${o.suffix}` }));
  if (type === 'union') return (def['options'] as ZodLike[]).flatMap((o) => objectsIn(o, depth + 1));
  return [];
}

/** A discriminated union's options by their discriminator value (`grants.ID` by type); undefined for any other value. */
function discriminated(schema: ZodLike, depth = 0): { key: string; options: Map<string, ZodLike> } | undefined {
  const def = schema._zod.def;
  const type = def['type'] as string;
  if (depth > 8) return undefined;
  if (WRAPPERS.has(type) || type === 'default' || type === 'prefault') return discriminated(def['innerType'] as ZodLike, depth + 1);
  if (type === 'pipe') return discriminated(def['in'] as ZodLike, depth + 1);
  if (type === 'record') return discriminated(def['valueType'] as ZodLike, depth + 1);
  const key = def['discriminator'];
  if (type !== 'union' || typeof key !== 'string') return undefined;
  const options = new Map<string, ZodLike>();
  for (const option of def['options'] as ZodLike[]) {
    const literal = (option._zod.def['shape'] as Record<string, ZodLike>)[key]!._zod.def['values'] as unknown[];
    options.set(String(literal[0]), option);
  }
  return { key, options };
}

function walk(object: ZodLike, prefix: string, rows: Map<string, Row>, depth: number, owners?: Map<string, Owners>, owner?: string): void {
  if (depth > 10) return;
  const shape = object._zod.def['shape'] as Record<string, ZodLike>;
  for (const [key, value] of Object.entries(shape)) {
    const path = `${prefix}${key}`;
    if (owner !== undefined && owners !== undefined) {
      const known = owners.get(path) ?? { of: 0, names: new Set<string>() };
      known.names.add(owner);
      owners.set(path, known);
    }
    const union = discriminated(value);
    if (union !== undefined) {
      // One row per key; a key only some options take says which (`grants.ID.region`: aws_sigv4).
      if (!rows.has(path)) rows.set(path, { path, takes: takes(value), fallback: fallback(value) });
      const of = union.options.size;
      const seen = new Map<string, Owners>();
      const suffix = objectsIn(value)[0]?.suffix ?? '';
      for (const [name, option] of union.options) walk(option, `${path}${suffix}.`, rows, depth + 1, seen, name);
      for (const [keyPath, known] of seen) {
        const row = rows.get(keyPath)!;
        if (keyPath.endsWith(`.${union.key}`)) row.takes = [...union.options.keys()].join(' \\| ');
        else if (known.names.size < of) row.takes = `${row.takes} (${[...known.names].join(', ')})`;
      }
      continue;
    }
    if (!rows.has(path)) {
      const taken = takes(value);
      let shown = fallback(value);
      // A duration written as text ("10s") is kept as milliseconds: its default is said as written.
      if (/^`\d+`$/.test(shown) && !/number/.test(taken) && /string/.test(taken)) shown = `\`${formatDuration(Number(shown.slice(1, -1)))}\``;
      rows.set(path, { path, takes: taken, fallback: shown });
    }
    for (const { object: inner, suffix } of objectsIn(value)) walk(inner, `${path}${suffix}.`, rows, depth + 1, owners, owner);
  }
}

/** Every key path of the config, in schema order: `proxy.listen`, `grants.ID.domains`, `agents.ID.rules[].paths`. */
export function configKeys(): Row[] {
  const rows = new Map<string, Row>();
  for (const { object } of objectsIn(configSchema as unknown as ZodLike)) walk(object, '', rows, 0);
  return [...rows.values()];
}

/** The reference table, as docs/configuration.md holds it between its markers. */
export function configReference(): string {
  const lines = ['| key | takes | default |', '|---|---|---|'];
  for (const row of configKeys()) lines.push(`| \`${row.path}\` | ${row.takes} | ${row.fallback} |`);
  return `${lines.join('\n')}\n`;
}
