// OpenAI's Chat Completions (and legacy Completions) stream their usage only when the request asks
// with `stream_options: {include_usage: true}` (issue 63): without it a streamed answer's usage is
// unknown. So the proxy asks for the agent: withIncludeUsage returns the request body with the
// option set, or undefined when nothing needs changing or the body is not one keyway understands
// (not UTF-8, not a JSON object, `stream_options` neither an object nor null): the proxy then sends
// the body unchanged and the answer's usage counts as unknown.
//
// The body is edited as text, not re-serialised, so every other member keeps its bytes (numbers
// past 2^53, escapes, spacing): the option is written into `stream_options` (its other members
// kept) or added as a new member at the front.
//
// Duplicate keys: `{"stream": false, "stream": true}` has two readings. JSON.parse takes the last,
// as do Python's json and Go's encoding/json that servers are written in; the body is read that way
// here. When `stream`, `stream_options` or `include_usage` is duplicated the body is re-serialised
// from that reading instead (JSON.stringify of JSON.parse): what goes upstream then has one reading
// only, keyway's, so a server that took the first would not see a stream keyway did not meter, nor
// refuse `stream_options` next to a `stream: false` it read.

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function withIncludeUsage(body: Buffer): Buffer | undefined {
  let text: string;
  let parsed: unknown;
  try {
    text = decoder.decode(body);
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || parsed['stream'] !== true) return undefined;
  const options = parsed['stream_options'];
  if (options !== undefined && options !== null && !isObject(options)) return undefined;
  if (isObject(options) && options['include_usage'] === true) return undefined;

  const open = text.indexOf('{');
  const members = membersOf(text, open);
  const optionsMembers = members.filter((m) => m.key === 'stream_options');
  const last = optionsMembers.at(-1);
  const inner = last !== undefined && text[last.valueStart] === '{' ? membersOf(text, last.valueStart) : [];
  const duplicated =
    members.filter((m) => m.key === 'stream').length > 1 || optionsMembers.length > 1 || inner.filter((m) => m.key === 'include_usage').length > 1;
  if (duplicated) {
    const options = isObject(parsed['stream_options']) ? parsed['stream_options'] : {};
    return Buffer.from(JSON.stringify({ ...parsed, stream_options: { ...options, include_usage: true } }));
  }
  if (last === undefined) return splice(text, open + 1, open + 1, `"stream_options":{"include_usage":true},`);
  // stream_options: null (or a non-object we refused above) is replaced whole.
  if (text[last.valueStart] !== '{') return splice(text, last.valueStart, last.valueEnd, '{"include_usage":true}');
  const existing = inner.find((m) => m.key === 'include_usage');
  if (existing !== undefined) return splice(text, existing.valueStart, existing.valueEnd, 'true');
  const brace = last.valueStart;
  return splice(text, brace + 1, brace + 1, inner.length === 0 ? '"include_usage":true' : '"include_usage":true,');
}

/**
 * Whether the answer to this Chat Completions body, sent as it is, reports its usage in every
 * server's reading: a JSON object (UTF-8, no BOM) whose `stream` is given once and is absent,
 * `false` or `null` (a whole answer carries `usage`), or is `true` with `stream_options` given once
 * and its `include_usage` given once and `true`. Anything else (a `stream` of `"true"` or 1, which
 * a lenient server may stream, duplicate keys, a body that is not JSON) is a stream keyway may not
 * be able to meter: under a budget, the proxy refuses to send it.
 */
export function usageReported(body: Buffer): boolean {
  let text: string;
  let parsed: unknown;
  try {
    text = decoder.decode(body);
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  if (!isObject(parsed)) return false;
  const members = membersOf(text, text.indexOf('{'));
  const once = (list: Member[], key: string) => list.filter((m) => m.key === key).length <= 1;
  if (!once(members, 'stream')) return false;
  const stream = parsed['stream'];
  if (stream === undefined || stream === false || stream === null) return true;
  if (stream !== true || !once(members, 'stream_options')) return false;
  const options = members.find((m) => m.key === 'stream_options');
  if (options === undefined || text[options.valueStart] !== '{') return false;
  return once(membersOf(text, options.valueStart), 'include_usage') && (parsed['stream_options'] as Record<string, unknown>)['include_usage'] === true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function splice(text: string, from: number, to: number, insert: string): Buffer {
  return Buffer.from(text.slice(0, from) + insert + text.slice(to));
}

interface Member {
  key: string;
  /** Where its value starts and ends (exclusive) in the text. */
  valueStart: number;
  valueEnd: number;
}

/** The members of the object whose `{` is at `open`, in a text JSON.parse already accepted. */
function membersOf(text: string, open: number): Member[] {
  const members: Member[] = [];
  let at = skipWs(text, open + 1);
  if (text.charCodeAt(at) === CLOSE_BRACE) return members;
  for (;;) {
    const keyEnd = stringEnd(text, at);
    const key = JSON.parse(text.slice(at, keyEnd)) as string;
    at = skipWs(text, keyEnd);
    at = skipWs(text, at + 1); // past ':'
    const valueEnd = valueEndOf(text, at);
    members.push({ key, valueStart: at, valueEnd });
    at = skipWs(text, valueEnd);
    if (text.charCodeAt(at) === CLOSE_BRACE) return members;
    at = skipWs(text, at + 1); // past ','
  }
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;

function isWs(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

function skipWs(text: string, at: number): number {
  while (at < text.length && isWs(text.charCodeAt(at))) at++;
  return at;
}

/** The index just past the string opening at `at` (a prompt's long strings are jumped, not walked). */
function stringEnd(text: string, at: number): number {
  let from = at + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** The index just past the value starting at `at`. */
function valueEndOf(text: string, at: number): number {
  const first = text.charCodeAt(at);
  if (first === QUOTE) return stringEnd(text, at);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let i = at;
    for (let c = text.charCodeAt(i); i < text.length && c !== COMMA && c !== CLOSE_BRACE && c !== CLOSE_BRACKET && !isWs(c); c = text.charCodeAt(++i));
    return i;
  }
  let depth = 0;
  let i = at;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
}
