import { WRAPPABLE } from './needles.ts';

// How one set of needles is searched (built once per needle list, kept while the list lives):
// the roots searched with Buffer#indexOf, the probes that find base64 wrapped in lines, and the
// indexes the edge-slice checks read. leak-guard/search.ts runs the search.

/**
 * A needle searched on its own. A needle that extends another (padded base64 over unpadded over
 * the bare core) is not: it is tried where the shorter one matched. Each root is looked for from
 * its rarest byte in ordinary text (an upper-case letter rather than a lower-case one), which lets
 * the byte search skip ahead: base64 forms of a token start with common letters and cost several
 * times more when searched from their first byte.
 */
export interface Root {
  needle: Buffer;
  /**
   * Where in the needle the search starts, and what is searched from there (the needle's rest, or
   * its first bytes, the others compared where they are found: searchedPart).
   */
  anchor: number;
  tail: Buffer;
  /** Needles that begin with this one, longest first. */
  longer: Buffer[];
  /**
   * Needles searched together with this one, itself included: the same but for letter case (hex,
   * percent and \u forms in upper and lower case). The search is then for a stretch they share.
   */
  alts?: Buffer[];
}

export interface Plan {
  roots: Root[];
  /**
   * The roots searched whole in data with no line feed, and in data with one: all but the
   * wrappable ones, which their probes then find, across line breaks or not.
   */
  searched: Root[];
  searchedBesideProbes: Root[];
  /** Each root needle as a latin1 string, for header values (strings) that hold none of them. */
  rootTexts: string[];
  /** The length of the shortest needle: a shorter header value or name holds none. */
  shortest: number;
  /** The needles an encoder may wrap in lines (the base64 forms), longest first, and the same as a set. */
  breakable: Buffer[];
  breakableSet: ReadonlySet<Buffer>;
  longestBreakable: number;
  /** Pieces of the wrappable roots searched to find them across line breaks (leak-guard/breaks.ts). */
  probes: Probe[];
  /** The needles the plan was built for: what the byte indexes below refer to by number. */
  needles: readonly Buffer[];
  /** For each byte value: the (needle, offset) pairs where a needle's slice a body may begin with starts with that byte. */
  sliceStarts: ByteIndex;
  /**
   * For each byte value: the (needle, length) pairs of the needles' first bytes (not all of them)
   * that end with that byte, longest first: what a body or a chunk may end with.
   */
  prefixEnds: ByteIndex;
}

/** A piece of a root's needle, from `at`, searched as a root of its own is. */
export interface Probe {
  root: Root;
  at: number;
  piece: Root;
}

/**
 * (needle, position) pairs grouped by a byte value, in three typed arrays: the pairs for byte b are
 * the k from from[b] up to from[b + 1], each plan.needles[needle[k]] at at[k]. Typed arrays, not
 * small objects: a plan lives as long as its secret is remembered, and objects would be old space
 * that every full collection marks (docs/perf/README.md, "Leak guard memory").
 */
export interface ByteIndex {
  from: Uint32Array;
  /** The narrowest type that holds the values: a plan then costs ~3 bytes a position, outside V8's heap. */
  needle: Uint8Array | Uint32Array;
  at: Uint16Array | Uint32Array;
}

/**
 * The shortest slice of a needle redacted at the start or the end of a body or message: an upstream
 * that cuts an echo (a Range window, a truncated field) hands out the rest in another window.
 * Shorter ends are left: 5 characters of a token reveal next to nothing, and needing fewer would
 * redact ordinary text that happens to begin like a needle.
 */
export const MIN_SLICE = 6;

const plans = new WeakMap<readonly Buffer[], Plan>();

export function planFor(needles: readonly Buffer[]): Plan {
  let plan = plans.get(needles);
  if (!plan) {
    plan = buildPlan(needles);
    // Keyed by the array: secretNeedles hands out the same array for the same secret.
    plans.set(needles, plan);
  }
  return plan;
}

function buildPlan(needles: readonly Buffer[]): Plan {
  const isPrefix = (short: Buffer, long: Buffer) => short.length < long.length && long.compare(short, 0, short.length, 0, short.length) === 0;
  const roots = needles
    .filter((n) => !needles.some((m) => isPrefix(m, n)))
    .map((needle) => {
      const anchor = rarestByte(needle);
      return {
        needle,
        anchor,
        tail: searchedPart(needle, anchor, needle.length),
        longer: needles.filter((m) => isPrefix(needle, m)).sort((a, b) => b.length - a.length),
      };
    });
  const breakable = needles.filter((n) => WRAPPABLE.has(n)).sort((a, b) => b.length - a.length);
  const probes = roots.filter((r) => WRAPPABLE.has(r.needle)).flatMap((root) => probesOf(root));
  const sliceStarts = byteIndex(needles, (visit) => {
    needles.forEach((needle, n) => {
      for (let at = 1; at <= needle.length - MIN_SLICE; at++) visit(needle[at]!, n, at);
    });
  });
  // Longest first (then in needle order), so a search can stop at the first prefix too short.
  const longest = Math.max(0, ...needles.map((n) => n.length));
  const prefixEnds = byteIndex(needles, (visit) => {
    for (let length = longest - 1; length >= 1; length--) {
      needles.forEach((needle, n) => {
        if (length < needle.length) visit(needle[length - 1]!, n, length);
      });
    }
  });
  return {
    needles,
    roots,
    searched: caseTwinsTogether(roots),
    searchedBesideProbes: caseTwinsTogether(roots.filter((r) => !WRAPPABLE.has(r.needle))),
    rootTexts: roots.map((r) => r.needle.toString('latin1')),
    shortest: Math.min(...needles.map((n) => n.length)),
    breakable,
    breakableSet: new Set(breakable),
    longestBreakable: breakable[0]?.length ?? 0,
    probes,
    sliceStarts,
    prefixEnds,
  };
}

/** A ByteIndex of the pairs `pairs` visits, in the order it visits them (it is called twice: to count, then to fill). */
function byteIndex(needles: readonly Buffer[], pairs: (visit: (byte: number, needle: number, at: number) => void) => void): ByteIndex {
  const from = new Uint32Array(257);
  pairs((byte) => {
    from[byte + 1] = from[byte + 1]! + 1;
  });
  for (let b = 1; b <= 256; b++) from[b] = from[b]! + from[b - 1]!;
  const count = from[256]!;
  const needle = needles.length <= 0x100 ? new Uint8Array(count) : new Uint32Array(count);
  const at = needles.every((n) => n.length <= 0xffff) ? new Uint16Array(count) : new Uint32Array(count);
  const next = from.slice(0, 256);
  pairs((byte, n, position) => {
    const k = next[byte]!;
    next[byte] = k + 1;
    needle[k] = n;
    at[k] = position;
  });
  return { from, needle, at };
}

/**
 * Pieces of a wrappable needle such that one of them lies whole between two line breaks, wherever
 * the breaks fall, as long as lines are 60 characters or more (every standard encoder's: 60, 64,
 * 76): each half of a needle up to 60 characters (a single break leaves one half whole), and
 * pieces of 30 at every multiple of 30 plus the last 30 for a longer one (lines of 60 or more
 * leave one of them whole). In data with a line feed the wrappable roots are found by these
 * instead of being searched whole: two searches (more for a long needle) instead of one.
 */
function probesOf(root: Root): Probe[] {
  const length = root.needle.length;
  const size = length <= 60 ? Math.ceil(length / 2) : 30;
  const starts = new Set<number>();
  for (let at = 0; at + size <= length; at += size) starts.add(at);
  starts.add(length - size);
  return [...starts].map((at) => {
    // Searched from its rarest byte, as roots are: from a first byte that is a lower-case letter, a
    // piece cost 20 times more in JSON text (measured), though a little less in binary data.
    const piece = root.needle.subarray(at, at + size);
    const anchor = rarestByte(piece);
    return { root, at, piece: { needle: piece, anchor, tail: searchedPart(piece, anchor, piece.length), longer: [] } };
  });
}

export function findRoot(data: Buffer, root: Root, from: number): number {
  const { needle, anchor, tail, alts } = root;
  const after = anchor + tail.length;
  for (let at = data.indexOf(tail, from + anchor); at !== -1; at = data.indexOf(tail, at + 1)) {
    const start = at - anchor;
    if (!alts) {
      if (anchor !== 0 && data.compare(needle, 0, anchor, start, at) !== 0) continue;
      if (after === needle.length) return start;
      if (start + needle.length <= data.length && data.compare(needle, after, needle.length, at + tail.length, start + needle.length) === 0) return start;
      continue;
    }
    if (start < 0 || start + needle.length > data.length) continue;
    for (const alt of alts) if (data.compare(alt, 0, alt.length, start, start + alt.length) === 0) return start;
  }
  return -1;
}

/**
 * Roots that differ only in letter case (and have no longer needles over them) made one, searched
 * by the longest stretch they share: one pass over the body for hex in both cases, not two.
 */
function caseTwinsTogether(roots: Root[]): Root[] {
  const groups = new Map<string, Root[]>();
  for (const r of roots) {
    const key = r.longer.length ? `\0${r.needle.toString('latin1')}` : r.needle.toString('latin1').toLowerCase();
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()].flatMap((group) => {
    if (group.length === 1) return group;
    const alts = group.map((r) => r.needle);
    const needle = alts[0]!;
    // The longest run of positions where every twin has the same byte.
    let best = [0, 0];
    for (let i = 0, runStart = 0; i <= needle.length; i++) {
      if (i === needle.length || alts.some((a) => a[i] !== needle[i])) {
        if (i - runStart > best[1]! - best[0]!) best = [runStart, i];
        runStart = i + 1;
      }
    }
    const [from, to] = best as [number, number];
    if (to - from < 4) return group; // too little in common: each searched on its own
    const piece = needle.subarray(from, to);
    const anchor = from + rarestByte(piece);
    return [{ needle, anchor, tail: searchedPart(needle, anchor, to), longer: [], alts }];
  });
}

export function matchLength(data: Buffer, at: number, root: Root): number {
  for (const l of root.longer) {
    if (at + l.length <= data.length && data.compare(l, 0, l.length, at, at + l.length) === 0) return l.length;
  }
  return root.needle.length;
}

/**
 * What Buffer#indexOf is given for a needle searched from `anchor`: at most LINEAR bytes when the
 * anchor byte is an upper-case letter G-Z, the rest compared where they match. Node searches under
 * 7 bytes by memchr of the first byte (fast when that byte is rare) and longer strings by
 * Boyer-Moore-Horspool (steady, slower); memchr is slow on a body made of the anchor byte, so not
 * for the bytes bodies are made of: a-z, digits, A-F (hex), '/' and the escapes' '%' and '\'.
 * Figures, and the worst case a hostile upstream can choose: docs/perf/README.md, "Leak guard search".
 */
function searchedPart(needle: Buffer, anchor: number, end: number): Buffer {
  return needle.subarray(anchor, commonness(needle[anchor]!) === 1 ? Math.min(end, anchor + LINEAR) : end);
}

/** The longest string Node's Buffer#indexOf searches linearly (kBMMinPatternLength - 1 in its string search). */
const LINEAR = 6;

/** The position of the needle's least common byte in text and JSON (the earliest among equals). */
function rarestByte(needle: Buffer): number {
  let best = 0;
  for (let i = 1; i < needle.length - 1; i++) if (commonness(needle[i]!) < commonness(needle[best]!)) best = i;
  return best;
}

function commonness(byte: number): number {
  if ((byte >= 0x61 && byte <= 0x7a) || byte === 0x20 || byte === 0x22 || byte === 0x2c || byte === 0x3a) return 4; // a-z, space, " , :
  if ((byte >= 0x30 && byte <= 0x39) || byte === 0x2e || byte === 0x2f || byte === 0x2d) return 3; // digits . / -
  // A-F after G-Z: as common as digits in an upper-case hex dump, and searchedPart searches from G-Z only.
  if (byte >= 0x41 && byte <= 0x46) return 2;
  if (byte >= 0x47 && byte <= 0x5a) return 1; // G-Z
  return 0;
}
