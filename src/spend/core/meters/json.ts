import { MAX_EVENT_BYTES } from './sse.ts';
import { QUOTE, BACKSLASH, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET, indexOr } from './json-bytes.ts';
import { JsonMembers, type WantedMembers } from './json-members.ts';

// Reading a JSON answer as it passes, within a bound. JsonBody collects a whole answer up to the
// bound for a reader that names no members to scan for (index.ts WholeJsonMeter; Anthropic's and
// OpenAI's answers are held only up to 64 KiB, then scanned: json-members.ts). Gemini's streamGenerateContent without `alt=sse` streams a JSON array of
// responses: JsonValues hands over each element as it completes, holding only the current one, so a
// long stream is never held whole (a single object, generateContent's answer, is one element).

/** Collects a body up to `max` bytes; past it, nothing more is kept and the body is unreadable. */
export class JsonBody {
  #pieces: Buffer[] = [];
  #bytes = 0;
  readonly #max: number;
  /** Past the bound: the body's last TAIL_BYTES or so (json-tail.ts reads its usage there). */
  #tail: Buffer[] = [];
  #tailBytes = 0;

  constructor(max = MAX_EVENT_BYTES) {
    this.#max = max;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get overflowed(): boolean {
    return this.#bytes > this.#max;
  }

  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes <= this.#max) return void this.#pieces.push(chunk);
    if (this.#pieces.length > 0) {
      this.#tail = this.#pieces;
      this.#tailBytes = this.#bytes - chunk.length;
      this.#pieces = [];
    }
    this.#tail.push(chunk);
    this.#tailBytes += chunk.length;
    while (this.#tail.length > 1 && this.#tailBytes - this.#tail[0]!.length >= TAIL_BYTES) this.#tailBytes -= this.#tail.shift()!.length;
  }

  /** The end of a body that overflowed (at least TAIL_BYTES of it, or all that came); empty otherwise. */
  tail(): Buffer {
    if (!this.overflowed) return Buffer.alloc(0);
    const whole = Buffer.concat(this.#tail, this.#tailBytes);
    return whole.length > TAIL_BYTES ? whole.subarray(whole.length - TAIL_BYTES) : whole;
  }

  /** The parsed body; undefined when it overflowed or is not JSON. */
  parse(): unknown {
    if (this.overflowed || this.#bytes === 0) return undefined;
    try {
      // A small answer comes in one piece: read it where it is, without a copy.
      const whole = this.#pieces.length === 1 ? this.#pieces[0]! : Buffer.concat(this.#pieces, this.#bytes);
      return JSON.parse(whole.toString('utf8'));
    } catch {
      return undefined;
    }
  }
}

/** How much of an overflowed body's end is kept: a usage member and the model before it fit many times over. */
const TAIL_BYTES = 64 * 1024;

export interface JsonValuesSink {
  /** One complete element (parsed), or undefined when it was not valid JSON. */
  value(value: unknown): void;
  /** An element larger than the bound went by unread. */
  skipped(bytes: number): void;
  /** An element larger than the bound was read as it passed for its wanted members (nested as in it). */
  large(members: Record<string, unknown>, bytes: number): void;
}

/**
 * Splits a JSON text into its top-level array's elements (or takes a top-level object as the one
 * element), as bytes arrive. It tracks strings and nesting only: each element is checked by
 * JSON.parse when it completes. Elements other than objects and arrays (none in Gemini's stream)
 * are passed over. An element past the bound is not held: given wanted members, it is read for
 * those as it passes (json-members.ts: a Gemini answer with an image inline carries its
 * usageMetadata), else skipped; either way its size is reported.
 */
export class JsonValues {
  readonly #sink: JsonValuesSink;
  readonly #max: number;
  /** Nesting depth counting the top-level array as 1 (a top-level object as 1 too). */
  #depth = 0;
  /** The top-level value is an object: it is the element. */
  #topObject = false;
  #inString = false;
  #escaped = false;
  /** The current element's pieces, from its opening bracket. */
  #pieces: Buffer[] = [];
  #bytes = 0;
  #inElement = false;
  #skipping = false;
  /** What an element past the bound is read for (none: skipped unread), and that element's reading. */
  readonly #wanted: WantedMembers | undefined;
  #large: JsonMembers | undefined;

  constructor(sink: JsonValuesSink, max = MAX_EVENT_BYTES, wanted?: WantedMembers) {
    this.#sink = sink;
    this.#max = max;
    this.#wanted = wanted;
  }

  push(chunk: Buffer): void {
    // The state in locals for the loop (a hot path: every byte of a Gemini JSON answer), written back after.
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    let start = this.#inElement ? 0 : -1;
    const length = chunk.length;
    // Inside a string the loop jumps to the next quote or backslash (an image's base64 is one
    // string of megabytes): their next positions at or after i (length: none), found once passed.
    let quote = -1;
    let slash = -1;
    for (let i = 0; i < length; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          continue;
        }
        if (quote < i) quote = indexOr(chunk, QUOTE, i, length);
        if (slash < i) slash = indexOr(chunk, BACKSLASH, i, length);
        if (slash < quote) {
          escaped = true;
          i = slash;
        } else if (quote === length) break;
        else {
          i = quote;
          inString = false;
        }
        continue;
      }
      const byte = chunk[i]!;
      if (byte === QUOTE) inString = true;
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        if (depth === 0) {
          depth = 1;
          if (byte === OPEN_BRACKET) continue;
          // A top-level object: the element starts here and ends when it closes.
          this.#topObject = true;
        } else depth += 1;
        if (depth === (this.#topObject ? 1 : 2)) {
          this.#inElement = true;
          start = i;
        }
      } else if ((byte === CLOSE_BRACE || byte === CLOSE_BRACKET) && depth > 0) {
        depth -= 1;
        if (this.#inElement && depth === (this.#topObject ? 0 : 1)) {
          this.#take(chunk.subarray(start, i + 1));
          this.#finish();
          start = -1;
        }
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    if (this.#inElement && start !== -1) this.#take(chunk.subarray(start));
  }

  /** Bytes of an element that was still open when the body stopped (for a partial count). */
  get openBytes(): number {
    return this.#inElement ? this.#bytes : 0;
  }

  #take(bytes: Buffer): void {
    this.#bytes += bytes.length;
    if (this.#skipping) return void this.#large?.push(bytes);
    if (this.#bytes > this.#max) {
      this.#skipping = true;
      if (this.#wanted !== undefined) {
        const large = new JsonMembers(this.#wanted);
        for (const piece of this.#pieces) large.push(piece);
        large.push(bytes);
        this.#large = large;
      }
      this.#pieces = [];
      return;
    }
    this.#pieces.push(bytes);
  }

  #finish(): void {
    const bytes = this.#bytes;
    const pieces = this.#pieces;
    const skipped = this.#skipping;
    const large = this.#large?.members();
    this.#pieces = [];
    this.#bytes = 0;
    this.#inElement = false;
    this.#skipping = false;
    this.#large = undefined;
    if (skipped) return large === undefined ? this.#sink.skipped(bytes) : this.#sink.large(large, bytes);
    let value: unknown;
    try {
      value = JSON.parse(Buffer.concat(pieces, bytes).toString('utf8'));
    } catch {
      value = undefined;
    }
    this.#sink.value(value);
  }
}
