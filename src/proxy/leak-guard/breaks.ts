import { findRoot, type Plan, type Probe } from './plan.ts';

// base64 wrapped in lines: MIME breaks every 76 characters with CRLF, PEM every 64 with LF, GitHub's
// contents API every 60 with LF, wherever the secret falls relative to the breaks. Rather than a
// needle per break position (and per line width), a base64 needle is matched skipping CR and LF
// bytes between its characters, from pieces of it that one line must hold whole (probesOf in
// leak-guard/plan.ts): a fixed number of byte searches per body, however many lines it has, and a
// match tried only where a piece is found (rare in a body that holds no needle).

const CR = 0x0d;
const LF = 0x0a;
/** Break bytes passed over in a row: one CRLF. More is no encoder's line break, and would let a held tail grow. */
const MAX_BREAK = 2;

/** A match: [start, end) in the data, break bytes included. */
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

/** The wrappable needles in data[from..], whole or across line breaks. */
export function brokenMatches(data: Buffer, from: number, plan: Plan): Broken {
  let spans: Span[] | undefined;
  let pending = -1;
  for (const probe of plan.probes) {
    for (let at = findRoot(data, probe.piece, from); at !== -1; at = findRoot(data, probe.piece, at + 1)) {
      const found = matchAround(data, from, at, probe);
      if (!found) continue;
      if (found.partial && (pending === -1 || found.start < pending)) pending = found.start;
      if (found.end !== -1) {
        spans ??= [];
        spans.push({ start: found.start, end: found.end });
      }
    }
  }
  if (!spans) return pending === -1 ? NONE : { spans: NONE.spans, pending };
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  return { spans, pending };
}

/**
 * The probe's needle matched out both ways from where its piece was found, skipping break bytes:
 * its span (the longest of the needles that begin with it), or end -1 when the data ends first;
 * partial when the data ends before this needle or a longer one could; or undefined.
 */
function matchAround(data: Buffer, from: number, found: number, probe: Probe): { start: number; end: number; partial: boolean } | undefined {
  const { needle, longer } = probe.root;
  let p = found - 1;
  for (let i = probe.at - 1, breaks = 0; i >= 0; p--) {
    if (p < from) return undefined;
    const byte = data[p]!;
    if (byte === LF || byte === CR) {
      if (++breaks > MAX_BREAK) return undefined;
      continue;
    }
    if (byte !== needle[i]) return undefined;
    breaks = 0;
    i--;
  }
  const start = p + 1;
  const end = goOn(data, found + probe.piece.needle.length, needle, probe.at + probe.piece.needle.length);
  if (end === -1) return undefined;
  if (end === data.length + 1) return { start, end: -1, partial: true };
  // A longer needle over this one (the padded form over the unpadded one), longest first.
  let partial = false;
  for (const more of longer) {
    const longerEnd = goOn(data, end, more, needle.length);
    if (longerEnd === data.length + 1) partial = true;
    else if (longerEnd !== -1) return { start, end: longerEnd, partial };
  }
  return { start, end, partial };
}

/**
 * Where needle[j..] ends when matched in data from `at` on, skipping break bytes; -1 if it does
 * not match; data.length + 1 if the data ends first.
 */
function goOn(data: Buffer, at: number, needle: Buffer, j: number): number {
  let q = at;
  for (let breaks = 0; j < needle.length; ) {
    if (q >= data.length) return data.length + 1;
    const byte = data[q++]!;
    if (byte === LF || byte === CR) {
      if (++breaks > MAX_BREAK) return -1;
      continue;
    }
    if (byte !== needle[j++]) return -1;
    breaks = 0;
  }
  return q;
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
  // The positions of the last characters that are not breaks, last first (within the window: the
  // held tail stays bounded whatever number of breaks an upstream sends).
  const positions: number[] = [];
  for (let p = data.length - 1, breaks = 0; p >= data.length - window && positions.length < plan.longestBreakable - 1; p--) {
    if (data[p] !== LF && data[p] !== CR) {
      positions.push(p);
      breaks = 0;
    } else if (++breaks > MAX_BREAK) break;
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
