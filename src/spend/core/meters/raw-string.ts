// The size of a JSON string member found in an event's text without parsing it, for content deltas:
// a stream's deltas are most of its events, and all a meter needs of one is how much text it
// delivered (for an answer cut short). JSON.parse costs about 0.4 µs an event (bench/meters.ts).
// Only for events whose shape the event name fixes (Anthropic's content_block_delta, OpenAI
// Responses' *.delta); anything unexpected returns undefined and the event is parsed as usual.

const QUOTE = 34;
const BACKSLASH = 92;

/**
 * The length, in characters as written (an escape counts as its characters: `\n` as 2, erring
 * high), of the string value of the first `"key":` in `text`; undefined when there is none or it
 * is not a string.
 */
export function rawStringLength(text: string, key: string): number | undefined {
  const needle = needleOf(key);
  const at = text.indexOf(needle);
  if (at === -1) return undefined;
  let i = at + needle.length;
  while (text.charCodeAt(i) === 32) i++;
  if (text.charCodeAt(i) !== QUOTE) return undefined;
  const start = ++i;
  for (;;) {
    const quote = text.indexOf('"', i);
    if (quote === -1) return undefined;
    // A quote preceded by an odd number of backslashes is escaped.
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote - start;
    i = quote + 1;
  }
}

/** `"key":` per key, made once: the quick path runs for every delta of every metered stream. */
const needles = new Map<string, string>();
function needleOf(key: string): string {
  let needle = needles.get(key);
  if (needle === undefined) {
    needle = `"${key}":`;
    needles.set(key, needle);
  }
  return needle;
}
