// A one-pass test of whether data could hold any of many needles, for the real values keyway holds
// for an agent (leak-guard/held.ts): hundreds of needles, which the search of leak-guard/search.ts
// (one Buffer#indexOf per needle) would pay for on every answer. The gate knows every GRAM-byte
// piece of every needle, at every offset, and reads the data once: a window of GRAM bytes rolls
// over it, hashed into a two-probe Bloom filter (BITS_PER_PIECE bits a piece, up to 2^21 bits:
// 256 KiB), and a window that passes it
// is looked up exactly (a sorted array of the pieces, as 48-bit numbers). Only data with a piece
// of a needle goes on to the full search. Data is looked up at every third position (STRIDE),
// which finds every needle of 8 bytes or more, and costs a third of looking at each.
//
// Why it misses nothing the full search finds: a whole needle (8 bytes or more) holds its first
// piece; a slice at a body's edge is 6 bytes or more (MIN_SLICE), a piece of its needle; a base64
// needle broken into lines has a probe of 6 bytes or more between two breaks (leak-guard/plan.ts),
// when the needle is 16 bytes or more (a gate over a shorter one is `always`: every data passes).

import { WRAPPABLE } from './needles.ts';
import { MIN_SLICE } from './plan.ts';

export const GRAM = MIN_SLICE;
/**
 * Data is looked up every STRIDE positions (and at its last GRAM bytes): a needle's piece of GRAM +
 * STRIDE - 1 bytes or more always holds a piece that starts on one of them.
 */
const STRIDE = 3;
/**
 * The filter's size: 128 bits per piece, so that a window of data that is no piece passes both
 * probes about 1 time in 4,000 (and is then looked up exactly), rounded up to a power of two
 * between 2^12 bits (512 bytes) and 2^21 (256 KiB, from 8,192 pieces on). A fixed 2^21 held 256 KiB
 * resident for each set of held values, most of it for a few hundred pieces (issue 64).
 */
const BITS_PER_PIECE = 128;
const MIN_BITS = 12;
const MAX_BITS = 21;

/** log2 of the filter's bits for `pieces` pieces. */
export function bloomBitsFor(pieces: number): number {
  let bits = MIN_BITS;
  while (bits < MAX_BITS && 2 ** bits < pieces * BITS_PER_PIECE) bits++;
  return bits;
}

/** The piece of GRAM (6) bytes at `at`: its first four bytes and its last two, hashed into 32 bits. */
function hashOf(high: number, low: number): number {
  return Math.imul(high ^ Math.imul(low, 0x9e3779b1), 0x85ebca6b) ^ (high >>> 15);
}

export class GramGate {
  readonly #bloom: Uint32Array;
  /** 32 minus log2 of the filter's bits: a hash's top bits are its bit's index. */
  readonly #shift: number;
  /** Every piece, sorted, once; the needles each is a piece of: #owners from #from[i] up to #from[i + 1]. */
  readonly #pieces: Float64Array;
  readonly #from: Uint32Array;
  readonly #owners: Uint32Array;
  /** Some needle is too short to be found by its pieces: every data is passed to the full search. */
  readonly always: boolean;
  readonly #count: number;

  constructor(needles: readonly Buffer[]) {
    const pieces: Array<[piece: number, needle: number]> = [];
    const bits = bloomBitsFor(needles.reduce((sum, needle) => sum + Math.max(0, needle.length - GRAM + 1), 0));
    this.#bloom = new Uint32Array((1 << bits) >>> 5);
    this.#shift = 32 - bits;
    let always = false;
    for (const [n, needle] of needles.entries()) {
      // A whole needle, and a base64 needle's probe between line breaks (half of one up to 60
      // bytes), must be GRAM + STRIDE - 1 bytes or more.
      if (needle.length < GRAM + STRIDE - 1 || (WRAPPABLE.has(needle) && needle.length < 2 * (GRAM + STRIDE - 1))) always = true;
      for (let at = 0; at + GRAM <= needle.length; at++) {
        const high = needle.readUInt32BE(at) | 0;
        const low = needle.readUInt16BE(at + 4);
        this.#set(hashOf(high, low));
        pieces.push([(high >>> 0) * 65536 + low, n]);
      }
    }
    pieces.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const unique: number[] = [];
    const from: number[] = [];
    const owners: number[] = [];
    for (const [i, [piece, needle]] of pieces.entries()) {
      if (i === 0 || piece !== pieces[i - 1]![0]) {
        unique.push(piece);
        from.push(owners.length);
      }
      if (owners.length === from.at(-1) || owners.at(-1) !== needle) owners.push(needle);
    }
    from.push(owners.length);
    this.#pieces = Float64Array.from(unique);
    this.#from = Uint32Array.from(from);
    this.#owners = Uint32Array.from(owners);
    this.always = always;
    this.#count = needles.length;
  }

  #set(h: number): void {
    const a = h >>> this.#shift;
    const b = Math.imul(h, 0x27d4eb2f) >>> this.#shift;
    this.#bloom[a >>> 5]! |= 1 << (a & 31);
    this.#bloom[b >>> 5]! |= 1 << (b & 31);
  }

  /** The piece's index among #pieces, or -1 when it is no needle's. */
  #hit(high: number, low: number): number {
    const h = hashOf(high, low);
    const shift = this.#shift;
    const a = h >>> shift;
    const bloom = this.#bloom;
    if ((bloom[a >>> 5]! & (1 << (a & 31))) === 0) return -1;
    const b = Math.imul(h, 0x27d4eb2f) >>> shift;
    if ((bloom[b >>> 5]! & (1 << (b & 31))) === 0) return -1;
    return this.#known((high >>> 0) * 65536 + low);
  }

  #known(piece: number): number {
    const pieces = this.#pieces;
    let lo = 0;
    let hi = pieces.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = pieces[mid]!;
      if (v === piece) return mid;
      if (v < piece) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * The needles (by index) that may be in `data`: those with a piece where the search of passes()
   * looks; every other needle is in it nowhere, whole, sliced at an edge or broken into lines.
   * undefined: none. `always`: every needle.
   */
  candidates(data: Buffer): number[] | undefined {
    if (this.always) return [...Array(this.#count).keys()];
    const last = data.length - GRAM;
    if (last < 0) return undefined;
    let found: Set<number> | undefined;
    const add = (index: number) => {
      found ??= new Set();
      for (let k = this.#from[index]!; k < this.#from[index + 1]!; k++) found.add(this.#owners[k]!);
    };
    for (let at = 0; at <= last; at += STRIDE) {
      const index = this.#hit((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!, (data[at + 4]! << 8) | data[at + 5]!);
      if (index !== -1) add(index);
    }
    if (last % STRIDE !== 0) {
      const index = this.#hit(
        (data[last]! << 24) | (data[last + 1]! << 16) | (data[last + 2]! << 8) | data[last + 3]!,
        (data[last + 4]! << 8) | data[last + 5]!,
      );
      if (index !== -1) add(index);
    }
    return found === undefined ? undefined : [...found].sort((x, y) => x - y);
  }

  /**
   * Whether `data` holds a piece of some needle where a needle, a slice of one at an edge, or a
   * base64 probe would be (or the gate is `always`). In a stream, the caller carries the last
   * GRAM - 1 bytes into the next data: a piece across the boundary is then seen whole.
   */
  passes(data: Buffer): boolean {
    if (this.always) return true;
    const last = data.length - GRAM;
    if (last < 0) return false;
    for (let at = 0; at <= last; at += STRIDE) {
      if (this.#hit((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!, (data[at + 4]! << 8) | data[at + 5]!) !== -1) return true;
    }
    // The last piece: a slice of a needle at the end of the data (MIN_SLICE bytes or more) holds it.
    return (
      last % STRIDE !== 0 &&
      this.#hit((data[last]! << 24) | (data[last + 1]! << 16) | (data[last + 2]! << 8) | data[last + 3]!, (data[last + 4]! << 8) | data[last + 5]!) !== -1
    );
  }

  /** passes() for a header value or name (latin1: one byte per character; past U+00FF, passed on to the full search). Every position: values are short. */
  passesText(text: string): boolean {
    if (this.always) return true;
    const last = text.length - GRAM;
    if (last < 0) return false;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return true;
    for (let at = 0; at <= last; at++) {
      const high = (text.charCodeAt(at) << 24) | (text.charCodeAt(at + 1) << 16) | (text.charCodeAt(at + 2) << 8) | text.charCodeAt(at + 3);
      if (this.#hit(high, (text.charCodeAt(at + 4) << 8) | text.charCodeAt(at + 5)) !== -1) return true;
    }
    return false;
  }
}
