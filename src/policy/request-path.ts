// The one reading of a request target that keyway judges AND sends upstream.
//
// A rule is only as good as the agreement between the path it judges and the path the upstream acts
// on. Servers disagree about `%2F`, `..;`, `\`, `%00`, double encoding and trailing junk, so keyway
// normalises each request target once, sends exactly that form, and refuses (400 bad_request) what
// it cannot put in one safe form. The decisions, case by case:
//
//   #fragment            cut off: never part of a request (RFC 9110 7.1), never forwarded
//   ?query               split off and sent on byte for byte; rules judge the path only
//   %41 (unreserved)     decoded (RFC 3986 6.2.2.2); other escapes kept, hex upper-cased
//   raw bytes >= 0x80    percent-encoded (Node's parser refuses most of them before this)
//   "<>^`{|} raw         percent-encoded: not URI characters
//   %00-%1F, %7F         refused: NUL and controls cut or split paths in C and Java stacks
//   \ and %5C            refused: Windows stacks and some routers read a backslash as /
//   %2F                  kept encoded (GitLab's `group%2Fproject` needs it); rules also read it
//                        as a slash (see pathReadings), and a dot segment hidden behind one refuses
//   %25 + two hex digits refused: double encoding only matters to a server that decodes twice
//   bad %, bad UTF-8     refused (overlong forms such as %C0%AF included)
//   . and .. segments    resolved, never above the root; `%2e%2e` is the same `..`
//   ..; .%20 ... ;x %20  refused: Tomcat reads `..;` as `..` and `;x` as nothing, Windows trims
//                        trailing dots and spaces: each would shift the segments after it
//   //                   collapsed to /: some frameworks read `//x` as an authority
//   trailing /           kept as sent
// Case, `;parameters` and `.json` suffixes are kept as sent; deny rules read them loosely instead
// (glob.ts), so `/Admin.json;x=1` is refused by a deny on `/admin/**`.

export type NormalisedTarget =
  | { ok: true /** Canonical path, as sent upstream. */; path: string /** `''` or `?…`, unchanged. */; query: string }
  | { ok: false; reason: string };

interface Segment {
  /** As sent upstream. */
  readonly wire: string;
  /** Decoded text, with an encoded slash left as `%2F`. */
  readonly text: string;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
// Characters sent literally when the client sent them literally: unreserved, sub-delims, : and @.
const LITERAL = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;
// A path parsePath would give back as it is: segments of literal characters only (no %), none
// empty, none starting with . or ; (dot segments, and those vanishes() looks at twice), and an
// optional trailing slash. Anything else takes the full parse.
const CANONICAL_PATH = /^\/(?:[A-Za-z0-9_~\-!$&'()*+,=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*(?:\/[A-Za-z0-9_~\-!$&'()*+,=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*\/?)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Normalises an origin-form request target (`/path?query#fragment`). */
export function normaliseRequestTarget(target: string): NormalisedTarget {
  const hash = target.indexOf('#');
  const withoutFragment = hash === -1 ? target : target.slice(0, hash);
  const q = withoutFragment.indexOf('?');
  const rawPath = q === -1 ? withoutFragment : withoutFragment.slice(0, q);
  const query = q === -1 ? '' : withoutFragment.slice(q);
  // Most paths are already in the one form: said so by one regex, without a segment array per request.
  if (CANONICAL_PATH.test(rawPath)) return { ok: true, path: rawPath, query };
  const parsed = parsePath(rawPath);
  if (typeof parsed === 'string') return { ok: false, reason: parsed };
  return { ok: true, path: parsed.path, query };
}

/**
 * The decoded segments a rule must consider for a path (normalised here if it was not already):
 * as sent, with `%2F` inside its segment, and, when the path has an encoded slash, as a server that
 * decodes it would split it. undefined when the path cannot be normalised (rules then fail closed).
 */
export function pathReadings(path: string): string[][] | undefined {
  // Every path rule of a grant asks about the same request in turn: parse it once.
  if (path === memo.path) return memo.readings;
  const readings = computeReadings(path);
  memo = { path, readings };
  return readings;
}

let memo: { path: string | undefined; readings: string[][] | undefined } = { path: undefined, readings: undefined };

function computeReadings(path: string): string[][] | undefined {
  const parsed = parsePath(path.replace(/[?#].*$/s, ''));
  if (typeof parsed === 'string') return undefined;
  const asSent = parsed.segments.map((s) => s.text);
  if (!asSent.some((t) => t.includes('%2F'))) return [asSent];
  const split = asSent.flatMap((t) => t.split('%2F')).filter((t) => t !== '');
  return [asSent, split];
}

function parsePath(rawPath: string): { path: string; segments: Segment[] } | string {
  if (rawPath === '*') return 'the request target * (server-wide OPTIONS) is not forwarded';
  if (!rawPath.startsWith('/')) return 'the request target must be a path starting with /';
  const rawSegments = rawPath.split('/').slice(1);
  const out: Segment[] = [];
  let trailingSlash = false;
  for (let i = 0; i < rawSegments.length; i++) {
    const last = i === rawSegments.length - 1;
    const segment = parseSegment(rawSegments[i]!);
    if (typeof segment === 'string') return segment;
    trailingSlash = last && (segment.text === '' || segment.text === '.' || segment.text === '..');
    if (segment.text === '' || segment.text === '.') continue;
    if (segment.text === '..') {
      out.pop();
      continue;
    }
    if (vanishes(segment.text)) return 'a path segment that some servers read as ., .. or nothing (such as ..; or ;x or %20) is refused';
    if (segment.text.includes('%2F') && segment.text.split('%2F').some(vanishes)) {
      return 'an encoded slash (%2F) next to a ., .. or empty segment is refused';
    }
    out.push(segment);
  }
  const joined = `/${out.map((s) => s.wire).join('/')}`;
  return { path: trailingSlash && out.length > 0 ? `${joined}/` : joined, segments: out };
}

/**
 * `..;x`, `.. `, `...`, `;x`, `%20`: segments that a server dropping `;parameters` (Tomcat, Jetty)
 * or trimming trailing dots and spaces (IIS, Windows) reads as `.`, `..` or nothing at all, which
 * would shift every segment after them. Exactly `.` and `..` are resolved before this is asked.
 */
function vanishes(text: string): boolean {
  // Fast answer for the usual segment: it starts with a character no server trims or drops.
  if (/^[A-Za-z0-9_~\-!$&'()*+,=:@%]/.test(text)) return false;
  return (
    text
      .normalize('NFKC')
      .split(';')[0]!
      .replace(/[\s.]+$/u, '') === ''
  );
}

const ENCODED_SLASH = -1;

// Most segments need no decoding and no re-encoding.
const PLAIN_SEGMENT = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]*$/;

function parseSegment(raw: string): Segment | string {
  if (PLAIN_SEGMENT.test(raw)) return { wire: raw, text: raw };
  let wire = '';
  // Decoded bytes; ENCODED_SLASH where the client sent %2F.
  const units: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    const code = ch.charCodeAt(0);
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX2.test(hex)) return 'a % in the path is not followed by two hex digits';
      i += 2;
      const byte = parseInt(hex, 16);
      if (byte < 0x20 || byte === 0x7f) return 'an encoded NUL or control character in the path is refused';
      if (byte === 0x5c) return 'an encoded backslash (%5C) in the path is refused';
      if (byte === 0x2f) {
        wire += '%2F';
        units.push(ENCODED_SLASH);
        continue;
      }
      wire += UNRESERVED.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${hex.toUpperCase()}`;
      units.push(byte);
      continue;
    }
    if (ch === '\\') return 'a backslash in the path is refused';
    if (code <= 0x20 || code === 0x7f) return 'a control character or space in the path is refused';
    if (code > 0xff) return 'the path has characters outside a byte range';
    wire += code >= 0x80 || !LITERAL.test(ch) ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : ch;
    units.push(code);
  }
  // A literal % is refused above unless it starts an escape, so any % among the units came from %25.
  for (let i = 0; i + 2 < units.length; i++) {
    if (units[i] === 0x25 && isHexDigit(units[i + 1]!) && isHexDigit(units[i + 2]!)) return 'a double-encoded path (%25 followed by hex digits) is refused';
  }
  const pieces: string[] = [];
  let from = 0;
  try {
    for (let i = 0; i <= units.length; i++) {
      if (i === units.length || units[i] === ENCODED_SLASH) {
        pieces.push(utf8.decode(Uint8Array.from(units.slice(from, i))));
        from = i + 1;
      }
    }
  } catch {
    return 'the path does not decode as UTF-8';
  }
  return { wire, text: pieces.join('%2F') };
}

function isHexDigit(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}
