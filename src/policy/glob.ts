// Path globs for rules: `/repos/**`, `/v1/chat/*`, `/repos/*/issues`, `/v1/models/gpt-*`.
//
// A path is a list of segments split on `/`; empty segments are dropped, so `//a/b/` is `a`,`b` and
// a trailing slash never matters. `*` as a whole segment matches exactly one segment; `*` inside a
// segment matches any characters but `/`; `**` (a whole segment only) matches zero or more segments,
// so `/admin/**` also matches `/admin` itself: a deny rule written that way cannot be sidestepped
// by leaving the tail off. Other glob syntax (`?`, `[…]`, `{…}`) is refused rather than taken
// literally, so nobody believes it works.
//
// picomatch sits in node_modules only as a transitive dev dependency, so it is not used here.

type Segment = { kind: 'globstar' } | { kind: 'exact'; text: string } | { kind: 'pattern'; re: RegExp };

export interface PathGlob {
  readonly source: string;
  matches(path: string): boolean;
}

// Characters that mean something in other glob dialects but rarely appear in API paths. `@`, `+`,
// `!` and parentheses stay literal: `/users/@me` is a real path.
const UNSUPPORTED = /[[\]{}]/;

/** Parses a glob; returns an error message (without the key path) when it is not a valid one. */
export function compileGlob(pattern: string): PathGlob | string {
  if (!pattern.startsWith('/')) return `expected a path starting with /, got "${pattern}"`;
  if (pattern.includes('?') || pattern.includes('#')) return `"${pattern}": a path glob matches the path only, never a query string or fragment`;
  if (UNSUPPORTED.test(pattern)) return `"${pattern}": only * (one segment) and ** (any number of segments) are supported`;
  const segments: Segment[] = [];
  for (const part of splitSegments(pattern)) {
    if (part === '.' || part === '..') {
      return `"${pattern}": . and .. segments are resolved in request paths before matching; write the path without them`;
    } else if (part === '**') {
      // Two globstars in a row mean the same as one; keep one so matching stays linear in practice.
      if (segments.at(-1)?.kind !== 'globstar') segments.push({ kind: 'globstar' });
    } else if (part.includes('**')) {
      return `"${pattern}": ** must be a whole segment, as in /repos/**`;
    } else if (part.includes('*')) {
      const body = part.split('*').map(escapeRegExp).join('[^/]*');
      segments.push({ kind: 'pattern', re: new RegExp(`^${body}$`) });
    } else {
      segments.push({ kind: 'exact', text: part });
    }
  }
  return {
    source: pattern,
    matches: (path) => matchSegments(segments, splitSegments(path)),
  };
}

export function splitSegments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function segmentMatches(segment: Segment, part: string): boolean {
  if (segment.kind === 'exact') return segment.text === part;
  if (segment.kind === 'pattern') return segment.re.test(part);
  return true;
}

// Dynamic programming over (pattern position, path position): O(pattern × path), no backtracking
// blow-up however many globstars a pattern has.
function matchSegments(pattern: readonly Segment[], parts: readonly string[]): boolean {
  // reach[j]: pattern[0..i) can match parts[0..j).
  let reach: boolean[] = Array.from({ length: parts.length + 1 }, (_, j) => j === 0);
  for (const segment of pattern) {
    const next: boolean[] = new Array<boolean>(parts.length + 1).fill(false);
    if (segment.kind === 'globstar') {
      let any = false;
      for (let j = 0; j <= parts.length; j++) {
        any = any || reach[j] === true;
        next[j] = any;
      }
    } else {
      for (let j = 1; j <= parts.length; j++) {
        next[j] = reach[j - 1] === true && segmentMatches(segment, parts[j - 1]!);
      }
    }
    reach = next;
  }
  return reach[parts.length] === true;
}

/**
 * The readings of a request path that a rule must consider, each normalised to `/a/b`: as sent
 * (only unreserved characters decoded, as RFC 3986 allows), and fully percent-decoded (`%2F` as
 * `/`, a backslash as `/`), both with `.` and `..` segments resolved and any query or fragment removed.
 * Upstream servers differ in which reading they act on, so a deny rule fires if any reading matches
 * and an allow rule holds only if every reading matches.
 */
export function requestPathForms(rawPath: string): string[] {
  const path = rawPath.replace(/[?#].*$/s, '');
  const asSent = resolveDots(path.replace(/%([0-9a-fA-F]{2})/g, (whole, hex: string) => decodeUnreserved(whole, hex)));
  const decoded = resolveDots(decodeAll(path).replace(/\\/g, '/'));
  return asSent === decoded ? [asSent] : [asSent, decoded];
}

function decodeUnreserved(whole: string, hex: string): string {
  const ch = String.fromCharCode(parseInt(hex, 16));
  return /[A-Za-z0-9._~-]/.test(ch) ? ch : whole.toUpperCase();
}

// Invalid UTF-8 after decoding (a lone %FF) must not throw: decode what can be, keep the rest.
function decodeAll(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path.replace(/%([0-9a-fA-F]{2})/g, (whole, hex: string) => {
      const code = parseInt(hex, 16);
      return code < 0x80 ? String.fromCharCode(code) : whole;
    });
  }
}

function resolveDots(path: string): string {
  const out: string[] = [];
  for (const part of splitSegments(path)) {
    if (part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
