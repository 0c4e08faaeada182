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
//
// Globs match decoded path segments (request-path.ts). An allow rule matches them exactly, as sent:
// case-sensitive, a `;parameter` or `.json` suffix is part of the segment, so it fails closed. A deny
// rule reads them loosely, as the most lenient server might (matchesLoosely): Unicode-compatible
// (NFKC) and case-folded, without `;parameters`, without trailing dots and spaces, and for the last
// segment without a `.ext` suffix (Rails and Spring serve `/admin.json` as `/admin`). Over-refusing
// a rare odd path is the price of never letting `/ADMIN;x=1` past `/admin/**`.

import { globSyntaxError } from '../config/index.ts';

type Segment = { kind: 'globstar' } | { kind: 'exact'; text: string } | { kind: 'pattern'; re: RegExp };

export interface PathGlob {
  readonly source: string;
  /** Exact match on a path's segments as written (no decoding). */
  matches(path: string): boolean;
  /** Exact match on decoded segments (an allow rule). */
  matchesParts(parts: readonly string[]): boolean;
  /** Lenient match on decoded segments (a deny rule): see the note at the top. */
  matchesLoosely(parts: readonly string[]): boolean;
}

/**
 * Compiles a glob; returns an error message (without the key path) when it is not a valid one. The
 * config schema has already refused invalid globs (config/rule-syntax.ts) in everything it loads.
 */
export function compileGlob(pattern: string): PathGlob | string {
  const error = globSyntaxError(pattern);
  if (error !== undefined) return error;
  const segments: Segment[] = [];
  const loose: Segment[] = [];
  for (const part of splitSegments(pattern)) {
    if (part === '**') {
      // Two globstars in a row mean the same as one; keep one so matching stays linear in practice.
      if (segments.at(-1)?.kind !== 'globstar') {
        segments.push({ kind: 'globstar' });
        loose.push({ kind: 'globstar' });
      }
    } else {
      segments.push(literalSegment(part));
      loose.push(literalSegment(fold(part)));
    }
  }
  const looseGlobstar = loose.some((s) => s.kind === 'globstar');
  // A glob of plain segments only (`/mcp`, `/v1/messages`) matches by comparing them in turn.
  const plain = segments.every((s) => s.kind === 'exact') ? segments.map((s) => (s as { text: string }).text) : undefined;
  return {
    source: pattern,
    matches: (path) =>
      matchSegments(
        segments,
        splitSegments(path).map((p) => [p]),
      ),
    matchesParts: (parts) =>
      plain !== undefined
        ? plain.length === parts.length && plain.every((text, i) => text === parts[i])
        : !refutedAtOnce(segments, parts) &&
          matchSegments(
            segments,
            parts.map((p) => [p]),
          ),
    matchesLoosely: (parts) =>
      !looselyRefutedAtOnce(loose, looseGlobstar, parts) &&
      matchSegments(
        loose,
        parts.map((p, i) => looseForms(p, i === parts.length - 1)),
      ),
  };
}

/**
 * A path that cannot match, told without matchSegments' per-call arrays: this runs on every
 * request of a grant with MCP endpoints or path rules, most of which are for other paths. Without
 * a globstar the segment counts must agree; a first segment spelt out must be the path's first.
 */
function refutedAtOnce(segments: readonly Segment[], parts: readonly string[]): boolean {
  const first = segments[0];
  if (first === undefined) return parts.length !== 0;
  if (first.kind === 'exact' && parts[0] !== first.text) return true;
  return segments.length !== parts.length && !segments.some((s) => s.kind === 'globstar');
}

/**
 * refutedAtOnce for a loose reading: a part's forms never change how many parts there are, so
 * without a globstar the counts must agree; a first segment spelt out must be among the first
 * part's forms. Most requests of a grant with MCP endpoints are for other paths, and end here.
 */
function looselyRefutedAtOnce(segments: readonly Segment[], globstar: boolean, parts: readonly string[]): boolean {
  if (!globstar && segments.length !== parts.length) return true;
  const first = segments[0];
  if (first?.kind !== 'exact' || parts.length === 0) return false;
  const part = parts[0]!;
  if (readsOneWay(part)) return part.toLowerCase() !== first.text;
  return !looseForms(part, parts.length === 1).includes(first.text);
}

function literalSegment(part: string): Segment {
  if (!part.includes('*')) return { kind: 'exact', text: part };
  return { kind: 'pattern', re: new RegExp(`^${part.split('*').map(escapeRegExp).join('[^/]*')}$`, 'u') };
}

function fold(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

/** The readings of one decoded segment that a lenient server might route on. */
export function looseForms(part: string, last: boolean): string[] {
  if (readsOneWay(part)) return [part.toLowerCase()];
  return looseFormsInFull(part, last);
}

/**
 * Whether a segment has one loose reading, its lower case: ASCII only (NFKC leaves ASCII as it
 * is), and none of what the other readings take off (a `;`, a `.`, ASCII white space). Most
 * segments of most paths are so; they are told without normalize, split, a regular expression and
 * a Set (this runs on every request of a grant with MCP endpoints or deny rules on paths).
 */
function readsOneWay(part: string): boolean {
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c >= 0x80 || c === 0x3b /* ; */ || c === 0x2e /* . */ || c === 0x20 || (c >= 0x09 && c <= 0x0d)) return false;
  }
  return true;
}

/** looseForms without the shortcut: every reading, by the rules at the top of this file. */
export function looseFormsInFull(part: string, last: boolean): string[] {
  const folded = fold(part);
  const withoutParams = folded.split(';')[0]!;
  const trimmed = withoutParams.replace(/[\s.]+$/u, '');
  const forms = new Set([folded, withoutParams, trimmed]);
  const dot = trimmed.indexOf('.');
  if (last && dot > 0) forms.add(trimmed.slice(0, dot));
  return [...forms];
}

export function splitSegments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function segmentMatches(segment: Segment, forms: readonly string[]): boolean {
  if (segment.kind === 'exact') return forms.includes(segment.text);
  if (segment.kind === 'pattern') return forms.some((f) => segment.re.test(f));
  return true;
}

// Dynamic programming over (pattern position, path position): O(pattern × path), no backtracking
// blow-up however many globstars a pattern has.
// Each part comes with the forms it may be read as; a segment matches the part if it matches one.
function matchSegments(pattern: readonly Segment[], parts: readonly (readonly string[])[]): boolean {
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
