// How one set of needles is searched (built once per needle list, kept while the list lives):
// the roots searched with Buffer#indexOf, what the line-broken base64 search keys on, and the
// indexes the edge-slice checks read. leak-guard.ts runs the search.

/**
 * A needle searched on its own. A needle that extends another (padded base64 over unpadded over
 * the bare core) is not: it is tried where the shorter one matched. Each root is looked for from
 * its rarest byte in ordinary text (an upper-case letter rather than a lower-case one), which lets
 * the byte search skip ahead: base64 forms of a token start with common letters and cost several
 * times more when searched from their first byte.
 */
export interface Root {
  needle: Buffer;
  /** Where in the needle the search starts, and the needle from there on. */
  anchor: number;
  tail: Buffer;
  /** Needles that begin with this one, longest first. */
  longer: Buffer[];
}

export interface Plan {
  roots: Root[];
  /** Each root needle as a latin1 string, for header values (strings) that hold none of them. */
  rootTexts: string[];
  longest: number;
  /** The needles an encoder may wrap in lines (base64 alphabets only), and their keys (leak-guard-breaks.ts). */
  breakable: Buffer[];
  breakableSet: ReadonlySet<Buffer>;
  longestBreakable: number;
  /**
   * 4-byte keys around a line break inside a breakable needle, by how many of the 4 bytes come
   * before the break (1, 2 or 3: index 0, 1, 2), each to the (needle, split) pairs that have it.
   */
  breakKeys: [Map<number, Split[]>, Map<number, Split[]>, Map<number, Split[]>];
  /** For each byte value: the (needle, offset) pairs where a needle's slice a body may begin with starts with that byte. */
  sliceStarts: Split[][];
  /** For each byte value: the (needle, length) pairs of needle prefixes a body may end with that end with that byte. */
  sliceEnds: Split[][];
}

/** A needle and a position in it. */
export interface Split {
  needle: Buffer;
  at: number;
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
      return { needle, anchor, tail: needle.subarray(anchor), longer: needles.filter((m) => isPrefix(needle, m)).sort((a, b) => b.length - a.length) };
    });
  const breakable = needles.filter((n) => n.every((b) => BASE64_BYTES[b] === 1));
  const breakKeys: Plan['breakKeys'] = [new Map(), new Map(), new Map()];
  for (const needle of breakable) {
    for (let at = 1; at < needle.length; at++) {
      for (let before = 1; before <= 3; before++) {
        const start = at - before;
        if (start < 0 || start + 4 > needle.length) continue;
        const map = breakKeys[before - 1]!;
        const key = needle.readUInt32BE(start);
        const list = map.get(key);
        if (list) list.push({ needle, at });
        else map.set(key, [{ needle, at }]);
      }
    }
  }
  const sliceStarts: Split[][] = Array.from({ length: 256 }, () => []);
  const sliceEnds: Split[][] = Array.from({ length: 256 }, () => []);
  for (const needle of needles) {
    for (let at = 1; at <= needle.length - MIN_SLICE; at++) sliceStarts[needle[at]!]!.push({ needle, at });
    for (let length = MIN_SLICE; length < needle.length; length++) sliceEnds[needle[length - 1]!]!.push({ needle, at: length });
  }
  return {
    roots,
    rootTexts: roots.map((r) => r.needle.toString('latin1')),
    longest: Math.max(0, ...needles.map((n) => n.length)),
    breakable,
    breakableSet: new Set(breakable),
    longestBreakable: Math.max(0, ...breakable.map((n) => n.length)),
    breakKeys,
    sliceStarts,
    sliceEnds,
  };
}

/** 1 for the bytes of base64 and base64url (with padding). */
const BASE64_BYTES = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=') BASE64_BYTES[c.charCodeAt(0)] = 1;

export function findRoot(data: Buffer, root: Root, from: number): number {
  const { needle, anchor, tail } = root;
  for (let at = data.indexOf(tail, from + anchor); at !== -1; at = data.indexOf(tail, at + 1)) {
    const start = at - anchor;
    if (anchor === 0 || data.compare(needle, 0, anchor, start, at) === 0) return start;
  }
  return -1;
}

export function matchLength(data: Buffer, at: number, root: Root): number {
  for (const l of root.longer) {
    if (at + l.length <= data.length && data.compare(l, 0, l.length, at, at + l.length) === 0) return l.length;
  }
  return root.needle.length;
}

/** The position of the needle's least common byte in text and JSON (the earliest among equals). */
function rarestByte(needle: Buffer): number {
  let best = 0;
  for (let i = 1; i < needle.length - 1; i++) if (commonness(needle[i]!) < commonness(needle[best]!)) best = i;
  return best;
}

function commonness(byte: number): number {
  if ((byte >= 0x61 && byte <= 0x7a) || byte === 0x20 || byte === 0x22 || byte === 0x2c || byte === 0x3a) return 3; // a-z, space, " , :
  if ((byte >= 0x30 && byte <= 0x39) || byte === 0x2e || byte === 0x2f || byte === 0x2d) return 2; // digits . / -
  if (byte >= 0x41 && byte <= 0x5a) return 1; // A-Z
  return 0;
}
