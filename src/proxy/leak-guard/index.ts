import { Transform, type TransformCallback } from 'node:stream';
import { sliceAtStart } from './edges.ts';
import { unpooled } from './needles.ts';
import { planFor, type Plan } from './plan.ts';
import { findNeedles, heldTail, mayStartIn } from './search.ts';

export { secretNeedles, MIN_SECRET_LENGTH, withSignatures } from './needles.ts';

// The leak guard's scanner: finds the secret's needles (leak-guard/needles.ts) in a byte stream and
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
  readonly #plan: Plan;
  readonly #style: RedactionStyle;
  #carry: Buffer = Buffer.alloc(0);
  /** Until the start of the body is known not to be a needle's last characters (or is redacted). */
  #atStart = true;
  redactions = 0;

  /** `atStart` false: the scan joins a body part-way (leak-guard/held.ts), so no slice is looked for at its first bytes. */
  constructor(needles: readonly Buffer[], style: RedactionStyle, atStart = true) {
    this.#needles = needles;
    this.#plan = planFor(needles);
    this.#style = style;
    this.#atStart = atStart;
  }

  /**
   * The bytes that are safe to pass on now, in order, as pieces: the chunk's bytes are not copied
   * to join them. In 'mask' style, bytes out always catch up with bytes in at end().
   */
  scan(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let carry = this.#carry;
    let start = 0;
    if (this.#atStart) {
      // The first bytes: held while they may still turn out to be a needle's end (a few bytes at
      // most, and only when they look like one).
      const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      start = sliceAtStart(data, this.#plan, false);
      if (start === -1) {
        this.#carry = Buffer.from(data);
        return out;
      }
      this.#atStart = false;
      carry = EMPTY;
      chunk = data;
    } else if (carry.length && !mayStartIn(carry, chunk, this.#needles, this.#plan)) {
      // A held tail is mostly nothing after all (the next chunk does not go on with the needle it
      // began): pass it on by itself, rather than copy the whole chunk behind it to search both.
      out.push(carry);
      carry = EMPTY;
    }
    const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const { spans, from } = findNeedles(data, this.#needles, this.#plan, false, start, false);
    this.#replace(data, spans, out);
    const hold = heldTail(data, from, this.#plan);
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

  /**
   * The held tail, at the end of the stream, with what needles it holds after all (a shorter one,
   * when a longer did not complete) and the slice of one it ends with.
   */
  end(): Buffer {
    const rest = this.#carry;
    this.#carry = EMPTY;
    const start = this.#atStart ? sliceAtStart(rest, this.#plan, true) : 0;
    this.#atStart = false;
    if (rest.length === 0) return rest;
    const { spans, from } = findNeedles(rest, this.#needles, this.#plan, true, start, true);
    if (spans.length === 0) return rest;
    const out: Buffer[] = [];
    this.#replace(rest, spans, out);
    out.push(rest.subarray(from));
    return Buffer.concat(out);
  }

  /** The bytes before each match, then its replacement, into `out`. */
  #replace(data: Buffer, spans: readonly number[], out: Buffer[]): void {
    let at = 0;
    for (let i = 0; i < spans.length; i += 2) {
      const start = spans[i]!;
      const end = spans[i + 1]!;
      if (start > at) out.push(data.subarray(at, start));
      out.push(replacement(end - start, this.#style));
      at = end;
    }
    this.redactions += spans.length / 2;
  }
}

function replacement(length: number, style: RedactionStyle): Buffer {
  return style === 'marker' ? REDACTION : Buffer.alloc(length, MASK_BYTE);
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

/**
 * A whole body at once: the common small JSON answer, sent again with its true length. `edges`:
 * with the slices of a needle at its start and end (a body; not a header value).
 */
export function redactAll(data: Buffer, needles: readonly Buffer[], style: RedactionStyle = 'marker', edges = true): { output: Buffer; count: number } {
  const plan = planFor(needles);
  const start = edges ? sliceAtStart(data, plan, true) : 0;
  const { spans, from } = findNeedles(data, needles, plan, true, start, edges);
  if (spans.length === 0) return { output: data, count: 0 };
  const pieces: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < spans.length; i += 2) {
    pieces.push(data.subarray(at, spans[i]!), replacement(spans[i + 1]! - spans[i]!, style));
    at = spans[i + 1]!;
  }
  pieces.push(data.subarray(from));
  return { output: Buffer.concat(pieces), count: spans.length / 2 };
}

/** A header value (latin1, as Node gives it) with every needle replaced by the marker. */
export function redactText(value: string, needles: readonly Buffer[]): { text: string; count: number } {
  // Most header values hold no needle: say so without a Buffer or a search plan per value (every
  // response header of every injected request comes through here).
  if (!mayHoldNeedle(value, planFor(needles))) return { text: value, count: 0 };
  const { output, count } = redactAll(Buffer.from(value, 'latin1'), needles, 'marker', false);
  return { text: count ? output.toString('latin1') : value, count };
}

const loweredNeedles = new WeakMap<readonly Buffer[], Buffer[]>();

/**
 * Whether a header name holds a needle. Compared in lower case: Node gives every name lower-cased,
 * so a secret echoed into a name arrives lower-cased, which still gives most of it away.
 */
export function nameHoldsNeedle(name: string, needles: readonly Buffer[]): boolean {
  let lowered = loweredNeedles.get(needles);
  if (!lowered) {
    // Only needles made of the characters a name may have (RFC 9110 5.6.2 tchar) can be in one.
    const texts = new Set(needles.map((n) => n.toString('latin1').toLowerCase()).filter((t) => TOKEN.test(t)));
    // Unpooled, as the needles are: kept as long as the needles, a pooled slice would hold its slab.
    lowered = unpooled([...texts].map((text) => Buffer.from(text, 'latin1')));
    loweredNeedles.set(needles, lowered);
  }
  return lowered.length > 0 && redactText(name.toLowerCase(), lowered).count > 0;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * False only when `value` holds no needle. Every needle begins with a root, and a latin1 string
 * holds a byte string exactly when its latin1 encoding does; a character past U+00FF (which latin1
 * encoding would cut to its low byte) sends the value to the byte search instead.
 */
function mayHoldNeedle(value: string, plan: Plan): boolean {
  // Most header values and names are shorter than any needle (latin1: one byte per character).
  if (value.length < plan.shortest) return false;
  if (BEYOND_LATIN1.test(value)) return true;
  for (const text of plan.rootTexts) if (value.includes(text)) return true;
  return false;
}

const BEYOND_LATIN1 = /[\u0100-\uffff]/;
