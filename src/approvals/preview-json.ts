import { cutText, REDACTED, SECRET_NAME, SECRET_VALUE, visibleJson } from './preview-text.ts';

// A JSON body as an approver sees it: re-serialised on one line, redacted and bounded, with every
// unseen character escaped (JSON.stringify leaves U+2028, bidi overrides and zero-width characters
// as they are). What it reads (default deny): one JSON text, no member name given twice in an
// object (servers keep the first or the last: the approver would see one amount, the server run
// the other). Numbers are shown as written (`1e400` and 20-digit integers stay what the server
// gets, not what a double makes of them). Anything else is shown raw by the caller, marked.

/** Objects nested deeper than this are shown as `…`. */
const MAX_DEPTH = 6;
/** Members or items shown per object or array. */
const MAX_MEMBERS = 40;

// JSON.parse's source text access (V8 in Node 24; not yet in TypeScript's lib).
const SourceJson = JSON as JSON & { rawJSON(text: string): unknown; isRawJSON(value: unknown): boolean };

export type JsonReading = { ok: true; preview: string } | { ok: false; reason: string };

export function jsonPreview(text: string): JsonReading {
  let value: unknown;
  try {
    value = JSON.parse(text, (_key, parsed: unknown, context?: { source?: string }) =>
      typeof parsed === 'number' && context?.source !== undefined ? SourceJson.rawJSON(context.source) : parsed,
    );
  } catch {
    return { ok: false, reason: 'it is not valid JSON' };
  }
  if (memberNamesIn(text) !== membersOf(value)) return { ok: false, reason: 'an object gives a member name twice' };
  return { ok: true, preview: visibleJson(JSON.stringify(redactValue(value, undefined, 0))) };
}

function isRaw(value: unknown): boolean {
  return SourceJson.isRawJSON(value);
}

function redactValue(value: unknown, name: string | undefined, depth: number): unknown {
  if (name !== undefined && SECRET_NAME.test(name) && value !== null && typeof value !== 'boolean') return REDACTED;
  if (typeof value === 'string') return SECRET_VALUE.test(value.trim()) ? REDACTED : cutString(value);
  if (value === null || typeof value !== 'object' || isRaw(value)) return value;
  if (depth >= MAX_DEPTH) return '…';
  if (Array.isArray(value)) {
    const shown = value.slice(0, MAX_MEMBERS).map((item) => redactValue(item, undefined, depth + 1));
    if (value.length > MAX_MEMBERS) shown.push(`… ${value.length - MAX_MEMBERS} more`);
    return shown;
  }
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (const key of keys.slice(0, MAX_MEMBERS)) {
    // Two long names cut alike must both stay shown: the second gets a number.
    let shownKey = cutString(key);
    for (let n = 2; Object.hasOwn(out, shownKey); n++) shownKey = `${cutString(key)} #${n}`;
    // defineProperty: a member named `__proto__` is a member, not the object's prototype.
    Object.defineProperty(out, shownKey, {
      value: redactValue((value as Record<string, unknown>)[key], key, depth + 1),
      enumerable: true,
      configurable: true,
      writable: true,
    });
  }
  if (keys.length > MAX_MEMBERS) out['…'] = `${keys.length - MAX_MEMBERS} more`;
  return out;
}

function cutString(text: string): string {
  const { text: kept, cut } = cutText(text);
  return cut ? `${kept}… (${text.length} characters)` : kept;
}

/** Member names in valid JSON text: each string followed (after white space) by `:`. */
function memberNamesIn(text: string): number {
  let count = 0;
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '"') {
      i++;
      continue;
    }
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
    if (text[i] === ':') count++;
  }
  return count;
}

/** Members in a parsed value, all levels: fewer than the names written means a name given twice. */
function membersOf(value: unknown): number {
  if (value === null || typeof value !== 'object' || isRaw(value)) return 0;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + membersOf(item), 0);
  return Object.keys(value).reduce((sum, key) => sum + 1 + membersOf((value as Record<string, unknown>)[key]), 0);
}
