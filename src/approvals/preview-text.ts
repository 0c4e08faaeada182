// The pieces every approval preview shares: what counts as a secret, how text is shown so that
// nothing in it is invisible or looks like something else, and how a value is cut visibly.

// Names whose values are credentials far more often than not: `password`, `api_key`, `client_secret`,
// `Authorization`, `accessToken`, `cookie`, `private_key`, `signature`, `otp`... (not `author`).
export const SECRET_NAME =
  /passw|passphrase|passcode|secret|token|^auth$|authoriz|authenticat|cookie|credential|signature|private|session|(^|[_-])key$|apikey|api_key|^otp$|^pin$|cvv|ssn/i;

// Values that look like credentials whatever their name: well-known token prefixes, JWTs, PEM.
export const SECRET_VALUE = /^(gh[pousr]_|github_pat_|xox[abprs]-|sk[-_]|rk_|AKIA|ASIA|AIza|ya29\.|eyJ[A-Za-z0-9_-]{8,}\.)|-----BEGIN /;

export const REDACTED = '[redacted]';

/** A string value longer than this is cut. */
export const MAX_VALUE = 120;

// Characters a person cannot see or cannot tell apart from others: controls (a line break would
// make one value look like two fields, ESC drives a terminal), format characters (bidi overrides
// reorder what is shown, zero-width characters hide), line and paragraph separators (U+2028 breaks
// a line in some viewers), spaces other than U+0020, private-use, unassigned and lone surrogates.
const UNSEEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Cs}]|[^\S ]/gu;
// A combining mark first in a value would sit on the quote before it.
const LEADING_MARK = /^\p{M}/u;

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `\uXXXX` for each UTF-16 unit of a character (a JSON escape, so a JSON preview stays JSON). */
export function unitEscape(char: string): string {
  let out = '';
  for (let i = 0; i < char.length; i++) out += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** Text with every unseen character escaped (and `\` doubled, so an escape cannot be forged). */
export function visible(text: string): string {
  const escaped = text.replaceAll('\\', '\\\\').replace(UNSEEN, (c) => SHORT_ESCAPES[c] ?? unitEscape(c));
  return LEADING_MARK.test(escaped) ? escaped.replace(LEADING_MARK, unitEscape) : escaped;
}

/** Text in double quotes, made visible, a quote inside escaped (so it cannot end the value early). */
export function quoted(text: string): string {
  return `"${visible(text).replaceAll('"', '\\"')}"`;
}

/** Already-JSON text (JSON.stringify's) with the unseen characters JSON leaves as they are escaped. */
export function visibleJson(json: string): string {
  return json.replace(UNSEEN, (c) => SHORT_ESCAPES[c] ?? unitEscape(c));
}

/** The text cut to `max` characters, never inside a surrogate pair; whether it was cut. */
export function cutText(text: string, max = MAX_VALUE): { text: string; cut: boolean } {
  if (text.length <= max) return { text, cut: false };
  const end = /[\uD800-\uDBFF]/.test(text[max - 1]!) ? max - 1 : max;
  return { text: text.slice(0, end), cut: true };
}

/** The bytes as strict UTF-8 text, or undefined when they are not (a server may read them otherwise). */
export function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The bytes as text, each byte that is not part of valid UTF-8 shown as `\xNN`, then made visible. */
export function rawVisible(bytes: Uint8Array): string {
  const whole = strictUtf8(bytes);
  if (whole !== undefined) return visible(whole);
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = sequenceLength(bytes[i]!);
    const text = length === 0 ? undefined : strictUtf8(bytes.subarray(i, i + length));
    if (text !== undefined && i + length <= bytes.length) {
      out += visible(text);
      i += length;
    } else {
      out += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

// In raw bytes keyway cannot read, secrets are found by shape only: a token prefix at a word start,
// a JWT, a PEM block, or the value after a secret-looking name (`password=…`, `"token": "…"`, a
// quoted value whole, escaped quotes and all). Matched on the bytes read one to a character
// (latin1), before anything is escaped for display, so an escape cannot split a match.
const RAW_TOKEN =
  /(?<![A-Za-z0-9])(?:(?:gh[pousr]_|github_pat_|xox[abprs]-|sk[-_]|rk_|AKIA|ASIA|AIza|ya29\.)[A-Za-z0-9_.\-+/=]*|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.\-+/=]*)|-----BEGIN [\s\S]*/g;
const RAW_NAMED =
  /([A-Za-z0-9_.-]*(?:passw|secret|token|api_?key|apikey|authoriz|cookie|credential|private|session)[A-Za-z0-9_.-]*"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"?|[^"&\s,;}]+)/gi;

/** Raw bytes with what looks like a secret replaced by `[redacted]`. */
export function redactRaw(bytes: Uint8Array): Buffer {
  const text = Buffer.from(bytes).toString('latin1');
  const redacted = text.replace(RAW_TOKEN, REDACTED).replace(RAW_NAMED, (_all, before: string) => `${before}${REDACTED}`);
  return Buffer.from(redacted, 'latin1');
}
