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
//
// The text is gathered as parts and joined once: one flat string per line. Appending field by field
// made a chain of ~40 partial strings per line, then a flat copy of it when the line was encoded,
// ~1.6 KiB of young garbage per line, two lines per request (docs/perf/breakdown.md, "Garbage").

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

/** Adds `text` quoted to `parts`, without a quoted copy when it needs no escape. */
function pushQuoted(parts: Parts, text: string): void {
  if (NEEDS_ESCAPE.test(text)) parts.push(JSON.stringify(text));
  else {
    parts.push('"');
    parts.push(text);
    parts.push('"');
  }
}

/** Adds a string-or-null field's JSON. */
function pushQuotedOrNull(parts: Parts, text: string | null): void {
  if (text === null) parts.push('null');
  else pushQuoted(parts, text);
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
  // One set of slots for every line: a new array would grow (and copy) its way to ~50 parts per
  // line, and emptying one (length = 0) lets its storage go. A line written while another is being
  // written (only a nested toJSON could) gets its own.
  const parts = linesParts.busy ? new Parts() : linesParts;
  parts.busy = true;
  try {
    return joinedLine(event as Readonly<Record<string, unknown>>, replica, parts);
  } finally {
    parts.clear();
  }
}

/**
 * A line's parts in slots kept between lines: unused slots hold '' (which join writes as nothing).
 * join copies every slot into a buffer of its own before it writes the text, so the slots are as
 * many as a usual line needs: a request's line is 45-57 parts (with a replica and an extra or
 * two); one with more grows the array for itself, and clear() cuts it back.
 */
class Parts {
  static readonly SLOTS = 64;
  readonly #slots: string[] = new Array<string>(Parts.SLOTS).fill('');
  #used = 0;
  busy = false;
  /** The line's extra keys (extraKeys), in slots kept the same way: a new array per line grew its way to 17 slots. */
  readonly extras: string[] = new Array<string>(16).fill('');
  extrasUsed = 0;

  push(text: string): void {
    this.#slots[this.#used++] = text;
  }

  join(): string {
    return this.#slots.join('');
  }

  /** Back to empty slots, the storage kept (a line with more parts than SLOTS grew it: cut back). */
  clear(): void {
    const slots = this.#slots;
    if (this.#used > Parts.SLOTS) slots.length = Parts.SLOTS;
    slots.fill('', 0, Math.min(this.#used, Parts.SLOTS));
    this.#used = 0;
    this.extras.fill('', 0, this.extrasUsed);
    this.extrasUsed = 0;
    this.busy = false;
  }
}

const linesParts = new Parts();

function joinedLine(src: Readonly<Record<string, unknown>>, replica: string | undefined, parts: Parts): string | null {
  let first = !fixedParts(src, parts);
  if (first) {
    parts.push('{');
    for (let i = 0; i < EVENT_FIELDS.length; i++) {
      const key = EVENT_FIELDS[i]!;
      let value = src[key];
      if (key === 'path' && typeof value === 'string' && QUERY_OR_FRAGMENT.test(value)) value = value.slice(0, value.search(QUERY_OR_FRAGMENT));
      const json = valueText(value);
      if (json === UNSURE) return null;
      if (json === undefined) continue;
      if (!first) parts.push(',');
      parts.push(FIXED_KEYS[i]!);
      parts.push(json);
      first = false;
    }
  }
  if (!extraKeys(src, replica, parts)) return null;
  const stamp = replica !== undefined && src['replica'] === undefined;
  const extras = parts.extras;
  for (let i = 0; i < parts.extrasUsed; i++) {
    const key = extras[i]!;
    const json = valueText(stamp && key === 'replica' ? replica : src[key]);
    if (json === UNSURE) return null;
    if (json === undefined) continue;
    if (!first) parts.push(',');
    pushQuoted(parts, key);
    parts.push(':');
    parts.push(json);
    first = false;
  }
  parts.push('}');
  return parts.join();
}

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The fixed fields as a draft holds them (each of its type, a finite number, no query on the path),
 * added to `parts`; false (nothing added) for anything else, which the field-by-field loop writes.
 */
function fixedParts(src: Readonly<Record<string, unknown>>, parts: Parts): boolean {
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
    return false;
  parts.push('{"ts":');
  pushQuoted(parts, ts);
  parts.push(',"id":');
  pushQuoted(parts, id);
  parts.push(',"agent":');
  pushQuotedOrNull(parts, agent);
  parts.push(',"grant":');
  pushQuotedOrNull(parts, grant);
  parts.push(',"decision":');
  pushQuoted(parts, decision);
  parts.push(',"code":');
  pushQuotedOrNull(parts, code);
  parts.push(',"method":');
  pushQuotedOrNull(parts, method);
  parts.push(',"host":');
  pushQuoted(parts, host);
  parts.push(',"port":');
  parts.push(String(port));
  parts.push(',"path":');
  pushQuotedOrNull(parts, path);
  parts.push(',"status":');
  parts.push(status === null ? 'null' : String(status));
  parts.push(',"duration_ms":');
  parts.push(String(duration_ms));
  parts.push(',"refreshed":');
  parts.push(refreshed ? 'true' : 'false');
  parts.push(',"client":');
  pushQuoted(parts, client);
  return true;
}

/**
 * The extra keys in sorted order (a stamped replica among them) into `parts.extras`; false for a key
 * only the generic way writes exactly.
 */
function extraKeys(src: Readonly<Record<string, unknown>>, replica: string | undefined, parts: Parts): boolean {
  const extras = parts.extras;
  let n = 0;
  let hasReplica = false;
  // for...in, not Object.keys: a draft's event has one shape line after line, and V8 walks the key
  // list it keeps for that shape, where Object.keys makes a new array of them every time. It also
  // lists inherited keys, which Object.keys (the generic way) does not: those are skipped.
  // A draft's event names the fixed fields first, in order: those are passed over without a lookup.
  let position = 0;
  let prefix = 0;
  for (const key in src) {
    if (prefix === position++ && prefix < EVENT_FIELDS.length && key === EVENT_FIELDS[prefix]) {
      prefix++;
      continue;
    }
    if (FIXED.has(key) || CHAIN.has(key) || key === '__proto__' || !Object.hasOwn(src, key)) continue;
    if (isIndexKey(key) || key === 'toJSON') {
      parts.extrasUsed = n;
      return false;
    }
    extras[n++] = key;
    if (key === 'replica') hasReplica = true;
  }
  if (replica !== undefined && src['replica'] === undefined && !hasReplica) extras[n++] = 'replica';
  parts.extrasUsed = n;
  // Insertion sort: usually one to three keys, often already in order. `<` is the default sort's order (UTF-16 units).
  for (let i = 1; i < n; i++) {
    const key = extras[i]!;
    let j = i - 1;
    while (j >= 0 && extras[j]! > key) {
      extras[j + 1] = extras[j]!;
      j--;
    }
    extras[j + 1] = key;
  }
  return true;
}
