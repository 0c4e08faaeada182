// A name the contained command chose (a file it wrote, a reason that quotes it), as it is shown to
// the person reviewing what was kept aside. The command is hostile: a name holding ESC [2K and a
// carriage return erases the line it is on and writes another, a newline forges a line of its own,
// U+202E turns the rest of the line around. So a name is shown as what passes, written as it is,
// and everything else escaped (default deny):
//
//   passes:  letters, marks, digits, punctuation and symbols of any script (café, 日本, ☃), and the
//            ordinary space;
//   escaped: a backslash as \\, so that an escape in a name cannot pass for one of ours; \t \n \r;
//            other C0 controls and DEL as \xNN; every other character (C1 controls, format and
//            bidirectional characters such as U+200B, U+202E, U+2066 or U+FEFF, line and paragraph
//            separators, other spaces, private-use, unassigned and lone surrogates) as \u{…}; a
//            byte that is not part of valid UTF-8 (a name is bytes on Linux) as \xNN (80 to FF:
//            never one of the controls' \xNN, which are 00 to 7F); and, though letters or symbols,
//            what shows as nothing (Unicode's default-ignorable characters: the Hangul fillers
//            U+115F, U+1160, U+3164, U+FFA0, variation selectors, U+180E) and the blank U+2800,
//            which would let two names look alike or a name look empty.

const PASSES = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
const SHOWS_AS_NOTHING = /^[\p{Default_Ignorable_Code_Point}\u2800]$/u;
const NAMED: Readonly<Record<string, string>> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\' };

/** The name as it may be written to a terminal: printable text as it is, everything else escaped. */
export function shownName(name: string | Uint8Array): string {
  if (typeof name !== 'string') return shownBytes(name);
  let shown = '';
  for (const c of name) shown += shownChar(c);
  return shown;
}

function shownBytes(bytes: Uint8Array): string {
  let shown = '';
  for (let i = 0; i < bytes.length; ) {
    const length = sequenceAt(bytes, i);
    if (length === 0) {
      shown += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      shown += shownChar(Buffer.from(bytes.subarray(i, i + length)).toString('utf8'));
      i += length;
    }
  }
  return shown;
}

function shownChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  if (PASSES.test(c) && !SHOWS_AS_NOTHING.test(c)) return c;
  const code = c.codePointAt(0)!;
  if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/** The length of the well-formed UTF-8 sequence at `i` (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF), or 0. */
function sequenceAt(bytes: Uint8Array, i: number): number {
  const lead = bytes[i]!;
  if (lead < 0x80) return 1;
  const continuation = (at: number, low = 0x80, high = 0xbf) => {
    const byte = bytes[i + at];
    return byte !== undefined && byte >= low && byte <= high;
  };
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const second = lead === 0xe0 ? continuation(1, 0xa0) : lead === 0xed ? continuation(1, 0x80, 0x9f) : continuation(1);
    return second && continuation(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const second = lead === 0xf0 ? continuation(1, 0x90) : lead === 0xf4 ? continuation(1, 0x80, 0x8f) : continuation(1);
    return second && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

/**
 * JSON text of `value` that is safe in a terminal and parses to the same value: every character
 * that would not pass in a name is written as JSON's own \uXXXX escape (JSON.stringify escapes the
 * C0 controls only, not DEL, C1 controls or U+202E).
 */
export function shownJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[^\n\\]/gu, (c) =>
    PASSES.test(c) && !SHOWS_AS_NOTHING.test(c)
      ? c
      : Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}
