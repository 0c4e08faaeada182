// Text every wire format shares: control characters replaced, and cutting to a byte budget on a
// UTF-8 boundary (a receiver's datagram or frame is bounded; a cut mid-character would be invalid UTF-8).

/**
 * C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: never written raw to a
 * receiver (a newline would forge a line; some viewers break lines at U+2028 too).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what is replaced
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Replaces each control character with U+FFFD. */
export function withoutControls(text: string): string {
  return text.replace(CONTROL, '\ufffd');
}

/** The longest prefix of `text` whose UTF-8 is at most `bytes` long. */
export function cutUtf8(text: string, bytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= bytes) return text;
  let end = Math.max(0, bytes);
  // Back off continuation bytes (10xxxxxx) so the cut lands before a character's first byte.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/**
 * Builds a message, cutting the path when the whole is over `limit` bytes: `build` gets the path to
 * write (cut, or as it was) and whether it was cut. What is left over the limit after the path is
 * gone (which the bounded fields of an audit line cannot reach) is cut at the end.
 */
export function fitted(path: string | null, limit: number, build: (path: string | null, cut: boolean) => string): string {
  const whole = build(path, false);
  const over = Buffer.byteLength(whole) - limit;
  if (over <= 0) return whole;
  if (path !== null) {
    // The marker and escaping may add a few bytes: leave room.
    const shorter = build(cutUtf8(path, Math.max(0, Buffer.byteLength(path) - over - 64)), true);
    if (Buffer.byteLength(shorter) <= limit) return shorter;
  }
  return cutUtf8(build(null, path !== null), limit);
}
