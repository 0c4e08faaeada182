import type { Plan, Split } from './leak-guard-plan.ts';

// base64 wrapped in lines: MIME breaks every 76 characters with CRLF, PEM every 64 with LF, GitHub's
// contents API every 60 with LF, wherever the secret falls relative to the breaks. Rather than a
// needle per break position (and per line width), a base64 needle is matched skipping CR and LF
// bytes between its characters. Only line breaks are looked at: at each one, the two bytes before
// and after it (4 in all) are looked up among the 4-byte runs of the needles that straddle a split;
// a hit (rare in text that holds no needle) is then matched out both ways. Lines shorter than 4
// characters are not followed (no encoder writes them).

const CR = 0x0d;
const LF = 0x0a;

/** A match across line breaks: [start, end) in the data, break bytes included. */
export interface Span {
  start: number;
  end: number;
}

export interface Broken {
  /** Sorted by start. */
  spans: Span[];
  /** Where a needle may begin that the data ends in the middle of (across a break), or -1. */
  pending: number;
}

const NONE: Broken = Object.freeze({ spans: Object.freeze([]) as unknown as Span[], pending: -1 });

/** The breakable needles in data[from..] that span a line break. `data` must hold an LF (the caller's cheap check). */
export function brokenMatches(data: Buffer, from: number, plan: Plan): Broken {
  if (plan.breakable.length === 0) return NONE;
  let spans: Span[] | undefined;
  let pending = -1;
  const length = data.length;
  for (let lf = data.indexOf(LF, from); lf !== -1; ) {
    let b0 = lf;
    while (b0 > from && data[b0 - 1] === CR) b0--;
    let b1 = lf + 1;
    while (b1 < length && (data[b1] === LF || data[b1] === CR)) b1++;
    lf = b1 < length ? data.indexOf(LF, b1) : -1;
    for (let before = 1; before <= 3; before++) {
      const keyStart = b0 - before;
      const after = 4 - before;
      if (keyStart < from || b1 + after > length) continue;
      let key = 0;
      for (let i = keyStart; i < b0; i++) key = key * 256 + data[i]!;
      for (let i = b1; i < b1 + after; i++) key = key * 256 + data[i]!;
      const splits = plan.breakKeys[before - 1]!.get(key);
      if (!splits) continue;
      for (const split of splits) {
        const found = matchAround(data, from, b0, b1, split);
        if (found === undefined) continue;
        if (found.end === -1) {
          if (pending === -1 || found.start < pending) pending = found.start;
        } else {
          spans ??= [];
          spans.push(found);
        }
      }
    }
  }
  if (!spans) return pending === -1 ? NONE : { spans: NONE.spans, pending };
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  return { spans, pending };
}

/**
 * The needle of `split` matched out from a break run [b0, b1) where it is split, skipping break
 * bytes: its span, or end -1 when the data ends before the needle does, or undefined.
 */
function matchAround(data: Buffer, from: number, b0: number, b1: number, split: Split): Span | undefined {
  const { needle, at } = split;
  let p = b0 - 1;
  for (let i = at - 1; i >= 0; p--) {
    if (p < from) return undefined;
    const byte = data[p]!;
    if (byte === LF || byte === CR) continue;
    if (byte !== needle[i]) return undefined;
    i--;
  }
  const start = p + 1;
  let q = b1;
  for (let j = at; j < needle.length; q++) {
    if (q >= data.length) return { start, end: -1 };
    const byte = data[q]!;
    if (byte === LF || byte === CR) continue;
    if (byte !== needle[j]) return undefined;
    j++;
  }
  return { start, end: q };
}

/**
 * How many bytes at the end of data (from `from` on) may begin a breakable needle that goes on,
 * across line breaks, in the next chunk: its first characters with breaks among or after them.
 * 0 when the last bytes hold no break (the plain tail check covers that).
 */
export function brokenTailAtEnd(data: Buffer, from: number, plan: Plan): number {
  if (plan.breakable.length === 0) return 0;
  const window = Math.min(data.length - from, plan.longestBreakable * 2 + 4);
  let hasBreak = false;
  for (let i = data.length - window; i < data.length; i++) {
    if (data[i] === LF || data[i] === CR) {
      hasBreak = true;
      break;
    }
  }
  if (!hasBreak) return 0;
  // The positions of the last characters that are not breaks, last first.
  const positions: number[] = [];
  for (let p = data.length - 1; p >= from && positions.length < plan.longestBreakable - 1; p--) {
    if (data[p] !== LF && data[p] !== CR) positions.push(p);
  }
  let hold = 0;
  for (const needle of plan.breakable) {
    for (let len = Math.min(needle.length - 1, positions.length); len > 0; len--) {
      const first = positions[len - 1]!;
      if (data.length - first <= hold) break;
      let i = 0;
      while (i < len && data[positions[len - 1 - i]!] === needle[i]) i++;
      if (i === len) {
        hold = data.length - first;
        break;
      }
    }
  }
  return hold;
}

/** Whether the first bytes of chunk, or any of carry, hold a break: a needle begun in carry may go on across it. */
export function breakNear(carry: Buffer, chunk: Buffer, plan: Plan): boolean {
  if (plan.breakable.length === 0) return false;
  if (carry.includes(LF) || carry.includes(CR)) return true;
  const end = Math.min(chunk.length, plan.longestBreakable * 2 + 4);
  for (let i = 0; i < end; i++) if (chunk[i] === LF || chunk[i] === CR) return true;
  return false;
}
