import { Transform, type TransformCallback } from 'node:stream';

export { secretNeedles, MIN_SECRET_LENGTH } from './leak-guard-needles.ts';

// The leak guard's scanner: finds the secret's needles (leak-guard-needles.ts) in a byte stream and
// replaces each one. Only a tail that could be the start of a needle is held back between chunks,
// so streams such as server-sent events still flow chunk by chunk.

/** What a secret becomes in text: says what happened, in the body the agent reads. */
export const REDACTION = Buffer.from('[redacted by keyway]');

/**
 * 'marker': the needle becomes REDACTION (text; the length changes).
 * 'mask': the needle becomes as many '*' as it had bytes, so lengths hold: a Content-Length, the
 * length prefixes of a binary format, a WebSocket frame's header all stay true.
 */
export type RedactionStyle = 'marker' | 'mask';

const MASK_BYTE = 0x2a; // '*': ASCII, so a UTF-8 text frame stays valid UTF-8

/** A streaming find-and-replace over one body or one WebSocket message. */
export class SecretScanner {
  readonly #needles: readonly Buffer[];
  readonly #style: RedactionStyle;
  #carry: Buffer = Buffer.alloc(0);
  redactions = 0;

  constructor(needles: readonly Buffer[], style: RedactionStyle) {
    this.#needles = needles;
    this.#style = style;
  }

  /**
   * The bytes that are safe to pass on now, in order, as pieces: the chunk's bytes are not copied
   * to join them. In 'mask' style, bytes out always catch up with bytes in at end().
   */
  scan(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let carry = this.#carry;
    // A held tail is mostly nothing after all (the next chunk does not go on with the needle it
    // began): pass it on by itself, rather than copy the whole chunk behind it to search both.
    if (carry.length && !mayStartIn(carry, chunk, this.#needles)) {
      out.push(carry);
      carry = EMPTY;
    }
    const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const { pieces, count, from } = replaceNeedles(data, this.#needles, this.#style, false);
    this.redactions += count;
    for (const piece of pieces) if (piece.length) out.push(piece);
    const hold = partialMatchAtEnd(data, from, this.#needles);
    const end = data.length - hold;
    if (end > from) out.push(from === 0 && end === data.length ? data : data.subarray(from, end));
    // A copy: the caller's chunk may be reused once this returns.
    this.#carry = hold ? Buffer.from(data.subarray(data.length - hold)) : EMPTY;
    return out;
  }

  /** What scan() gives, as one buffer. */
  push(chunk: Buffer): Buffer {
    const pieces = this.scan(chunk);
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  /** The held tail, at the end of the stream, with what needles it holds after all (a shorter one, when a longer did not complete). */
  end(): Buffer {
    const rest = this.#carry;
    this.#carry = EMPTY;
    if (rest.length === 0) return rest;
    const { output, count } = redactAll(rest, this.#needles, this.#style);
    this.redactions += count;
    return output;
  }
}

const EMPTY = Buffer.alloc(0);

/** What a LeakGuard runs the body through: a SecretScanner, or one that also reports (response-guard.ts). */
interface StreamingScan {
  scan(chunk: Buffer): Buffer[];
  end(): Buffer;
}

/** A body through a scanner, as a stream stage (a body with decoders before it, a WebSocket refusal's body). */
export class LeakGuard extends Transform {
  readonly #scanner: StreamingScan;

  constructor(scanner: StreamingScan) {
    super();
    this.#scanner = scanner;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (const piece of this.#scanner.scan(chunk)) this.push(piece);
    done();
  }

  override _flush(done: TransformCallback): void {
    const rest = this.#scanner.end();
    done(null, rest.length ? rest : undefined);
  }
}

/** A whole body at once: the common small JSON answer, sent again with its true length. */
export function redactAll(data: Buffer, needles: readonly Buffer[], style: RedactionStyle = 'marker'): { output: Buffer; count: number } {
  const { pieces, count, from } = replaceNeedles(data, needles, style, true);
  if (count === 0) return { output: data, count };
  pieces.push(data.subarray(from));
  return { output: Buffer.concat(pieces), count };
}

/** A header value (latin1, as Node gives it) with every needle replaced by the marker. */
export function redactText(value: string, needles: readonly Buffer[]): { text: string; count: number } {
  // Most header values hold no needle: say so without a Buffer or a search plan per value (every
  // response header of every injected request comes through here).
  if (!mayHoldNeedle(value, planFor(needles))) return { text: value, count: 0 };
  const { output, count } = redactAll(Buffer.from(value, 'latin1'), needles);
  return { text: count ? output.toString('latin1') : value, count };
}

/**
 * Every needle in `data` replaced; `from` is where the unmatched tail begins. Each needle's next
 * occurrence is searched once and searched again only once a replacement has passed it, so a body
 * made of many echoes costs one pass per needle, not one per echo.
 */
/** replaceNeedles' answer for data with no needle in it (shared: callers only read it then). */
const NO_NEEDLE: { pieces: Buffer[]; count: number; from: number } = Object.freeze({ pieces: Object.freeze([]) as unknown as Buffer[], count: 0, from: 0 });

function replaceNeedles(data: Buffer, needles: readonly Buffer[], style: RedactionStyle, final: boolean): { pieces: Buffer[]; count: number; from: number } {
  const { roots } = planFor(needles);
  // Most data holds no needle: say so without allocating the search state.
  let first = 0;
  let firstAt = -1;
  for (; first < roots.length; first++) {
    firstAt = findRoot(data, roots[first]!, 0);
    if (firstAt !== -1) break;
  }
  if (firstAt === -1) return NO_NEEDLE;
  const next = roots.map((r, i) => (i < first ? -1 : i === first ? firstAt : findRoot(data, r, 0)));
  const pieces: Buffer[] = [];
  let from = 0;
  let count = 0;
  for (;;) {
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
    if (at === -1) return { pieces, count, from };
    // Mid-stream, a longer needle may still complete here with the next chunk (the padded form of
    // a base64 over its unpadded prefix): stop, and let the tail be held from this match on.
    if (!final && needles.some((n) => n.length > length && data.length - at < n.length && data.compare(n, 0, data.length - at, at) === 0))
      return { pieces, count, from };
    pieces.push(data.subarray(from, at), style === 'marker' ? REDACTION : Buffer.alloc(length, MASK_BYTE));
    count++;
    from = at + length;
    for (let i = 0; i < roots.length; i++) {
      if (next[i] !== -1 && next[i]! < from) next[i] = findRoot(data, roots[i]!, from);
    }
  }
}

/**
 * How the needles are searched. A needle that extends another (padded base64 over unpadded over
 * the bare core) is not searched on its own: it is tried where the shorter one matched. Each
 * searched needle is looked for from its rarest byte in ordinary text (an upper-case letter rather
 * than a lower-case one), which lets the byte search skip ahead: base64 forms of a token start
 * with common letters and cost several times more when searched from their first byte.
 */
interface Root {
  needle: Buffer;
  /** Where in the needle the search starts, and the needle from there on. */
  anchor: number;
  tail: Buffer;
  /** Needles that begin with this one, longest first. */
  longer: Buffer[];
}

interface Plan {
  roots: Root[];
  /** Each root needle as a latin1 string, for header values (strings) that hold none of them. */
  rootTexts: string[];
}

const plans = new WeakMap<readonly Buffer[], Plan>();

/**
 * False only when `value` holds no needle. Every needle begins with a root, and a latin1 string
 * holds a byte string exactly when its latin1 encoding does; a character past U+00FF (which latin1
 * encoding would cut to its low byte) sends the value to the byte search instead.
 */
function mayHoldNeedle(value: string, plan: Plan): boolean {
  if (BEYOND_LATIN1.test(value)) return true;
  for (const text of plan.rootTexts) if (value.includes(text)) return true;
  return false;
}

const BEYOND_LATIN1 = /[\u0100-\uffff]/;

function planFor(needles: readonly Buffer[]): Plan {
  let plan = plans.get(needles);
  if (!plan) {
    const isPrefix = (short: Buffer, long: Buffer) => short.length < long.length && long.compare(short, 0, short.length, 0, short.length) === 0;
    const roots = needles
      .filter((n) => !needles.some((m) => isPrefix(m, n)))
      .map((needle) => {
        const anchor = rarestByte(needle);
        return { needle, anchor, tail: needle.subarray(anchor), longer: needles.filter((m) => isPrefix(needle, m)).sort((a, b) => b.length - a.length) };
      });
    plan = { roots, rootTexts: roots.map((r) => r.needle.toString('latin1')) };
    // Keyed by the array: secretNeedles hands out the same array for the same secret.
    plans.set(needles, plan);
  }
  return plan;
}

function findRoot(data: Buffer, root: Root, from: number): number {
  const { needle, anchor, tail } = root;
  for (let at = data.indexOf(tail, from + anchor); at !== -1; at = data.indexOf(tail, at + 1)) {
    const start = at - anchor;
    if (anchor === 0 || data.compare(needle, 0, anchor, start, at) === 0) return start;
  }
  return -1;
}

function matchLength(data: Buffer, at: number, root: Root): number {
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

/** How many bytes at the end of data (after `from`) could begin a needle continued in the next chunk. */
function partialMatchAtEnd(data: Buffer, from: number, needles: readonly Buffer[]): number {
  let longest = 0;
  for (const n of needles) {
    // Candidate starts, earliest (longest) first. Compared byte by byte in JS: most candidates fail
    // at their first or second byte, where a native compare per candidate costs a call each (a
    // body of one repeated letter that starts a needle made that ~10% of keyway's time on 1 MiB
    // downloads).
    for (let len = Math.min(n.length - 1, data.length - from); len > longest; len--) {
      if (endsWithPrefix(data, n, len)) {
        longest = len;
        break;
      }
    }
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
 * whole in it, or that `chunk` goes on with for as many bytes as it has.
 */
function mayStartIn(carry: Buffer, chunk: Buffer, needles: readonly Buffer[]): boolean {
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
