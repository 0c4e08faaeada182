// A Content-Type read strictly (RFC 9110 8.3.1), and whether the body it announces reads as UTF-8
// for every server. keyway judges or rewrites some bodies (MCP messages, placeholders, a form a
// signature scheme edits, an approval's preview); a server that decodes the bytes in another charset
// (UTF-7 makes `+AG0-` an `m`) would run another message than the one keyway read. Parsers disagree
// at the edges (the first or the last of two charsets, a `charset=` inside a quoted value, a name
// that only ends in `charset`), so keyway does not pick a side: it reads a body as text only when
// every reading agrees, and says why not otherwise.

export interface MediaType {
  /** `type/subtype`, lower case. */
  type: string;
  /** Parameters in order, names lower case, quoted values unquoted. */
  params: ReadonlyArray<readonly [name: string, value: string]>;
}

// tchar (RFC 9110 5.6.2).
const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;

/** The media type, or undefined when the text is not one by the grammar. */
export function parseMediaType(text: string): MediaType | undefined {
  let i = 0;
  const n = text.length;
  const ows = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && TCHAR.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  ows();
  const type = token();
  if (type === '' || text[i] !== '/') return undefined;
  i++;
  const subtype = token();
  if (subtype === '') return undefined;
  const params: Array<readonly [string, string]> = [];
  for (;;) {
    ows();
    if (i === n) break;
    if (text[i] !== ';') return undefined;
    i++;
    ows();
    if (i === n || text[i] === ';') continue;
    const name = token();
    if (name === '' || text[i] !== '=') return undefined;
    i++;
    let value: string;
    if (text[i] === '"') {
      const quoted = quotedString(text, i);
      if (quoted === undefined) return undefined;
      value = quoted.value;
      i = quoted.end;
    } else {
      value = token();
      if (value === '') return undefined;
    }
    params.push([name.toLowerCase(), value]);
  }
  return { type: `${type}/${subtype}`.toLowerCase(), params };
}

/** A quoted-string starting at `start` (the opening quote): its value and the index after it. */
function quotedString(text: string, start: number): { value: string; end: number } | undefined {
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return { value, end: i + 1 };
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return undefined;
    if (c === 0x5c) {
      i++;
      if (i >= text.length) return undefined;
    }
    value += text[i];
  }
  return undefined;
}

export type Utf8Reading = { ok: true; mediaType: MediaType } | { ok: false; reason: string };

// Only the label itself: body-parser refuses `utf8` (it wants `utf-`), other readers accept it, so it is refused here too.
const UTF8_LABELS = new Set(['utf-8']);

/**
 * Whether a body of this Content-Type is UTF-8 for every reader: a parsable type, at most one
 * `charset` and that one UTF-8, no other parameter whose name holds `charset` (a loose reader
 * matching `charset=` would take it), and no quoted value a loose reader could split (`;`, `=`,
 * `,`, a quote or a space inside quotes). No charset at all is UTF-8 for JSON (RFC 8259) and for
 * forms as servers read them.
 */
export function utf8Reading(contentType: string | undefined): Utf8Reading {
  if (contentType === undefined) return { ok: false, reason: 'it has no Content-Type' };
  const mediaType = parseMediaType(contentType);
  if (mediaType === undefined) return { ok: false, reason: `its Content-Type ${shown(contentType)} is not a media type keyway can read` };
  let charsets = 0;
  for (const [name, value] of mediaType.params) {
    if (name === 'charset') {
      charsets++;
      if (!UTF8_LABELS.has(value.toLowerCase())) return { ok: false, reason: `its charset is ${shown(value)}: keyway reads UTF-8 only` };
    } else if (name.includes('charset')) {
      return { ok: false, reason: `its Content-Type has a parameter ${shown(name)}, which a loose reader takes for the charset` };
    }
    if (/[;=,"\s\\]/.test(value)) return { ok: false, reason: `its Content-Type parameter ${shown(name)} has a value readers split differently` };
  }
  if (charsets > 1) return { ok: false, reason: 'its Content-Type gives the charset twice (servers disagree on which one counts)' };
  return { ok: true, mediaType };
}

/** A byte-order mark at the start of a body: UTF-8's, or UTF-16's or UTF-32's (a reader may switch charset on it). */
export function byteOrderMark(bytes: Uint8Array): string | undefined {
  const [a, b, c, d] = bytes;
  if (a === 0xef && b === 0xbb && c === 0xbf) return 'UTF-8';
  if (a === 0x00 && b === 0x00 && c === 0xfe && d === 0xff) return 'UTF-32';
  if (a === 0xfe && b === 0xff) return 'UTF-16';
  if (a === 0xff && b === 0xfe) return c === 0x00 && d === 0x00 ? 'UTF-32' : 'UTF-16';
  return undefined;
}

function shown(text: string): string {
  return JSON.stringify(text.length <= 60 ? text : `${text.slice(0, 60)}…`);
}
