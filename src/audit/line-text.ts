// The audit line's JSON written field by field from its known schema, instead of an ordered object
// built and then stringified. Every request writes two lines under write-ahead, and the write-ahead
// line (the draft's event spread, then `phase` added last) is never in sorted order as it stands, so
// each request used to copy it into an ordered object before JSON.stringify. Here the fixed fields
// are written in the contract's order straight from the event, and the extras (usually one or two)
// are sorted in place, whatever order the stages added them in.
//
// The bytes must be exactly JSON.stringify(orderFields(event)) (record.ts): verify rebuilds every line
// that way, and signed evidence covers them. So this writer admits only what it can write exactly
// (strings, finite and non-finite numbers, booleans, null, undefined, and objects it hands whole to
// JSON.stringify) and answers null for the rest, which the caller then writes the generic way:
//   - an extra key that is an array index ("0", "12"): a plain object puts those before every other
//     key, whatever order they were set in;
//   - an extra named `toJSON` (JSON.stringify would call it on the ordered object);
//   - an object value with a toJSON of its own other than Date's (it is called with the field's name
//     inside an object, with '' when stringified alone, and may answer differently).
// The property test (test/unit/audit-line-text.test.ts) compares the two over random events.

import { EVENT_FIELDS } from './record-fields.ts';

const FIXED = new Set<string>(EVENT_FIELDS);
const CHAIN = new Set<string>(['seq', 'prev', 'hash']);

/** A character JSON.stringify writes otherwise than as itself: a control, `"`, `\`, or a surrogate (lone ones are escaped). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;
const QUERY_OR_FRAGMENT = /[?#]/;
const DATE_TO_JSON = Date.prototype.toJSON;

/** `"text"` as JSON.stringify writes it; the usual string (ASCII, no quote) without the native call. */
function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** Sentinel: the value would not be written exactly here (see the file's head). */
const UNSURE = Symbol('unsure');

/** A value's JSON, undefined where JSON.stringify leaves the field out, UNSURE where this writer cannot vouch for the text. */
function valueText(value: unknown): string | undefined | typeof UNSURE {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      // Number-to-string is JSON's own for finite numbers (-0 included: "0"); NaN and ±Infinity are null.
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'object': {
      if (value === null) return 'null';
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (toJSON !== undefined && toJSON !== DATE_TO_JSON) return UNSURE;
      return JSON.stringify(value);
    }
    default:
      // bigint: JSON.stringify throws, as it would have on the ordered object.
      return JSON.stringify(value);
  }
}

/** The fixed fields' `"name":` prefixes, quoted once. */
const FIXED_KEYS = EVENT_FIELDS.map((key) => `"${key}":`);

/** Whether a key is one an object would put first (an array index), which the sorted order cannot hold. */
function isIndexKey(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 0x30 && c <= 0x39;
}

/**
 * The text JSON.stringify(orderFields(event, replica)) gives, with the path's query cut (serializeEvent's
 * rule), written without the ordered copy; null when the event holds something only the generic way
 * writes exactly (see the file's head).
 */
export function lineText(event: object, replica: string | undefined): string | null {
  const src = event as Readonly<Record<string, unknown>>;
  let text = fixedText(src);
  let first = false;
  if (text === null) {
    text = '{';
    first = true;
    for (let i = 0; i < EVENT_FIELDS.length; i++) {
      const key = EVENT_FIELDS[i]!;
      let value = src[key];
      if (key === 'path' && typeof value === 'string' && QUERY_OR_FRAGMENT.test(value)) value = value.slice(0, value.search(QUERY_OR_FRAGMENT));
      const json = valueText(value);
      if (json === UNSURE) return null;
      if (json === undefined) continue;
      text += first ? FIXED_KEYS[i]! + json : `,${FIXED_KEYS[i]!}${json}`;
      first = false;
    }
  }
  const extras = extraKeys(src, replica);
  if (extras === null) return null;
  const stamp = replica !== undefined && src['replica'] === undefined;
  for (const key of extras) {
    const json = valueText(stamp && key === 'replica' ? replica : src[key]);
    if (json === UNSURE) return null;
    if (json === undefined) continue;
    text += `${first ? '' : ','}${quote(key)}:${json}`;
    first = false;
  }
  return `${text}}`;
}

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The fixed fields as a draft holds them (each of its type, a finite number, no query on the path),
 * in one template; null for anything else, which the field-by-field loop writes.
 */
function fixedText(src: Readonly<Record<string, unknown>>): string | null {
  const { ts, id, agent, grant, decision, code, method, host, port, path, status, duration_ms, refreshed, client } = src;
  if (
    !str(ts) ||
    !str(id) ||
    !strOrNull(agent) ||
    !strOrNull(grant) ||
    !str(decision) ||
    !strOrNull(code) ||
    !strOrNull(method) ||
    !str(host) ||
    !finite(port) ||
    !strOrNull(path) ||
    (path !== null && QUERY_OR_FRAGMENT.test(path)) ||
    !(status === null || finite(status)) ||
    !finite(duration_ms) ||
    typeof refreshed !== 'boolean' ||
    !str(client)
  )
    return null;
  return `{"ts":${quote(ts)},"id":${quote(id)},"agent":${agent === null ? 'null' : quote(agent)},"grant":${grant === null ? 'null' : quote(grant)},"decision":${quote(decision)},"code":${code === null ? 'null' : quote(code)},"method":${method === null ? 'null' : quote(method)},"host":${quote(host)},"port":${port},"path":${path === null ? 'null' : quote(path)},"status":${status === null ? 'null' : status},"duration_ms":${duration_ms},"refreshed":${refreshed},"client":${quote(client)}`;
}

/** The extra keys in sorted order (a stamped replica among them), or null for a key only the generic way writes exactly. */
function extraKeys(src: Readonly<Record<string, unknown>>, replica: string | undefined): string[] | null {
  const keys = Object.keys(src);
  const extras: string[] = [];
  // A draft's event names the fixed fields first, in order: the extras are what follows. (Any
  // other object is filtered key by key.)
  let from = 0;
  while (from < EVENT_FIELDS.length && keys[from] === EVENT_FIELDS[from]) from++;
  if (from < EVENT_FIELDS.length) from = 0;
  for (let i = from; i < keys.length; i++) {
    const key = keys[i]!;
    if (FIXED.has(key) || CHAIN.has(key) || key === '__proto__') continue;
    if (isIndexKey(key) || key === 'toJSON') return null;
    extras.push(key);
  }
  if (replica !== undefined && src['replica'] === undefined && !extras.includes('replica')) extras.push('replica');
  // Insertion sort: usually one to three keys, often already in order. `<` is the default sort's order (UTF-16 units).
  for (let i = 1; i < extras.length; i++) {
    const key = extras[i]!;
    let j = i - 1;
    while (j >= 0 && extras[j]! > key) {
      extras[j + 1] = extras[j]!;
      j--;
    }
    extras[j + 1] = key;
  }
  return extras;
}
