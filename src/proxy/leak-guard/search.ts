import { brokenMatches, brokenTailAtEnd, breakNear, type Span } from './breaks.ts';
import { sliceAtEnd } from './edges.ts';
import { findRoot, matchLength, type Plan } from './plan.ts';

// The search under the leak guard's scanner (index.ts): where the needles are in a buffer,
// and how much of its end must be held for the next chunk.

/** Where the matches are: each [start, end) as two numbers, in order, none overlapping. */
export interface Found {
  spans: number[];
  /** Where the unmatched tail begins: after the last match. */
  from: number;
}

/** The answer for data with no needle in it (shared: callers only read it). */
export const NOTHING: Found = Object.freeze({ spans: Object.freeze([]) as unknown as number[], from: 0 });

const LF = 0x0a;
const CR = 0x0d;
const NO_SPANS: readonly Span[] = Object.freeze([]);

/**
 * Every needle in `data`: whole ones, line-broken base64 ones, and the slices at its edges when
 * `start` (a slice length at the start, from sliceAtStart) or `end` say so. Each needle's next
 * occurrence is searched once and searched again only once a match has passed it, so a body made
 * of many echoes costs one pass per needle, not one per echo. Not `final`, it stops before a match
 * a longer needle may still extend with the next chunk (the padded base64 over the unpadded one).
 */
export function findNeedles(data: Buffer, needles: readonly Buffer[], plan: Plan, final: boolean, start: number, end: boolean): Found {
  // base64 wrapped in lines needs a line feed: without one, each needle is searched whole (fewer,
  // longer strings to search for, which is faster); with one, the wrappable ones by their probes.
  const wrapped = plan.probes.length > 0 && data.includes(LF);
  const roots = wrapped ? plan.searchedBesideProbes : plan.searched;
  // Most data holds no needle: say so without allocating the search state.
  let first = 0;
  let firstAt = -1;
  for (; first < roots.length; first++) {
    firstAt = findRoot(data, roots[first]!, 0);
    if (firstAt !== -1) break;
  }
  const broken = wrapped ? brokenMatches(data, 0, plan) : undefined;
  const endSlice = end ? sliceAtEnd(data, 0, plan) : 0;
  let extra: readonly Span[] = broken ? broken.spans : NO_SPANS;
  if (start > 0 || endSlice > 0) {
    const withEdges = extra.slice();
    if (start > 0) withEdges.push({ start: 0, end: start });
    if (endSlice > 0) withEdges.push({ start: data.length - endSlice, end: data.length });
    extra = withEdges.sort((a, b) => a.start - b.start || b.end - a.end);
  }
  const pending = broken && !final ? broken.pending : -1;
  if (firstAt === -1 && extra.length === 0) return NOTHING;
  const next = roots.map((r, i) => (i < first ? -1 : i === first ? firstAt : findRoot(data, r, 0)));
  const spans: number[] = [];
  let from = 0;
  let e = 0;
  for (;;) {
    while (e < extra.length && extra[e]!.start < from) e++;
    let at = -1;
    let length = 0;
    for (let i = 0; i < roots.length; i++) {
      const found = next[i]!;
      if (found === -1 || (at !== -1 && found > at)) continue;
      // The earliest match; at one position the longest (a padded base64 over its unpadded prefix).
      const matched = matchLength(data, found, roots[i]!);
      if (found < at || at === -1 || matched > length) {
        at = found;
        length = matched;
      }
    }
    const span = extra[e];
    const wholeNeedle = at !== -1 && !(span && (span.start < at || (span.start === at && span.end - span.start > length)));
    if (span && !wholeNeedle) {
      at = span.start;
      length = span.end - span.start;
    }
    if (at === -1) return { spans, from };
    if (!final) {
      if (pending !== -1 && at >= pending) return { spans, from };
      // Mid-stream, a longer needle may still complete here with the next chunk: stop, and let
      // the tail be held from this match on.
      if (wholeNeedle && needles.some((n) => n.length > length && goesOnTo(data, at, n, plan.breakableSet.has(n)))) return { spans, from };
    }
    // A match that overlaps this one (another form, a slice) is taken in with it: redacting one and
    // skipping the other would hand out what is left of the second.
    let stop = at + length;
    for (let grown = true; grown; ) {
      grown = false;
      for (let i = 0; i < roots.length; i++) {
        const found = next[i]!;
        if (found !== -1 && found < stop) {
          const reach = found >= at ? found + matchLength(data, found, roots[i]!) : -1;
          if (reach > stop) {
            stop = reach;
            grown = true;
          }
          next[i] = findRoot(data, roots[i]!, Math.max(stop, found + 1));
        }
      }
      for (; e < extra.length && extra[e]!.start < stop; e++) {
        if (extra[e]!.end > stop) {
          stop = extra[e]!.end;
          grown = true;
        }
      }
    }
    spans.push(at, stop);
    from = stop;
    for (let i = 0; i < roots.length; i++) {
      if (next[i] !== -1 && next[i]! < from) next[i] = findRoot(data, roots[i]!, from);
    }
  }
}

/** Whether data from `at` to its end is the start of needle but not all of it (line breaks passed over in a base64 one). */
function goesOnTo(data: Buffer, at: number, needle: Buffer, wrapped: boolean): boolean {
  let j = 0;
  for (let p = at; p < data.length; p++) {
    const byte = data[p]!;
    if (wrapped && (byte === LF || byte === CR)) continue;
    if (j >= needle.length || byte !== needle[j]) return false;
    j++;
  }
  return j < needle.length;
}

/** How many bytes at the end of data (after `from`) could begin a needle continued in the next chunk. */
export function heldTail(data: Buffer, from: number, plan: Plan): number {
  let longest = brokenTailAtEnd(data, from, plan);
  if (data.length === from) return longest;
  // Only needle prefixes that end with the data's last byte, longest first (leak-guard/plan.ts):
  // a dozen candidates instead of every length of every needle, on every chunk.
  const room = data.length - from;
  const index = plan.prefixEnds;
  const lastByte = data[data.length - 1]!;
  for (let k = index.from[lastByte]!, stop = index.from[lastByte + 1]!; k < stop; k++) {
    const len = index.at[k]!;
    if (len <= longest) break;
    if (len <= room && endsWithPrefix(data, plan.needles[index.needle[k]!]!, len)) longest = len;
  }
  return longest;
}

/** Whether the last `len` bytes of data are the first `len` bytes of needle. */
function endsWithPrefix(data: Buffer, needle: Buffer, len: number): boolean {
  const at = data.length - len;
  for (let i = 0; i < len; i++) if (data[at + i] !== needle[i]) return false;
  return true;
}

/**
 * Whether a needle may begin inside `carry` (the tail held from the last chunk): one that lies
 * whole in it, that `chunk` goes on with for as many bytes as it has, or (a base64 needle) that may
 * go on across a line break near the chunk's start.
 */
export function mayStartIn(carry: Buffer, chunk: Buffer, needles: readonly Buffer[], plan: Plan): boolean {
  if (breakNear(carry, chunk, plan)) return true;
  for (let start = 0; start < carry.length; start++) {
    for (const n of needles) if (matchesAcross(carry, start, chunk, n)) return true;
  }
  return false;
}

function matchesAcross(carry: Buffer, start: number, chunk: Buffer, needle: Buffer): boolean {
  const inCarry = Math.min(carry.length - start, needle.length);
  for (let i = 0; i < inCarry; i++) if (carry[start + i] !== needle[i]) return false;
  const inChunk = Math.min(needle.length - inCarry, chunk.length);
  for (let i = 0; i < inChunk; i++) if (chunk[i] !== needle[inCarry + i]) return false;
  return true;
}
