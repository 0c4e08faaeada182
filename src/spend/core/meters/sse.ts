import { StringDecoder } from 'node:string_decoder';
import type { WantedMembers } from './json-members.ts';
import { LargeEvent } from './sse-large.ts';

// An incremental server-sent events reader (the WHATWG event-stream format) for the meters: fed the
// body in whatever pieces it arrives (mid-line, mid-character), it hands over each event as it
// completes and keeps only the current event's partial line and data. Lines end in LF, CRLF or CR
// (a CR at a piece's end and the LF that opens the next are one line end). An event larger than
// MAX_EVENT_BYTES is not held: given the members its reader wants, it is read for those as it
// passes (sse-large.ts: a Responses `response.completed` repeating base64 images carries the
// stream's usage), else skipped whole; either way its size is reported, and a stream never grows
// what is held.
//
// Each piece is decoded once (a StringDecoder keeps a character split between pieces) and cut into
// lines as a string: per-line Buffer calls cost about 1 µs an event, which the proxy would pay on
// every metered answer (bench/meters.ts). So the bound is counted in decoded characters: at most
// MAX_EVENT_BYTES characters, which is that many bytes of ASCII (up to 3 times as many bytes of
// other text, never more than 16 MiB held as a string).
//
// Only `event:` and `data:` matter to the meters; `id:`, `retry:` and comments are passed over.

/** The most one event may hold (its data and its partial line); the meters' bound for a JSON body too. */
export const MAX_EVENT_BYTES = 8 * 1024 * 1024;

const LF = 10;
const CR = 13;

export interface SseSink {
  /** One complete event: its `event:` name (undefined when it gave none) and its data lines joined by LF. */
  event(name: string | undefined, data: string): void;
  /** An event too large to read was skipped: `size` characters of it went by unread. */
  skipped(size: number): void;
  /** An event too large to hold was read as it passed: its name, its wanted members (nested as in its data), its size in characters. */
  large(name: string | undefined, members: Record<string, unknown>, size: number): void;
}

export class SseReader {
  readonly #sink: SseSink;
  readonly #max: number;
  readonly #decoder = new StringDecoder('utf8');
  /** The current line so far (it holds no line end). */
  #partial = '';
  /** The current event's name and data lines. */
  #name: string | undefined;
  #data: string[] = [];
  #dataSize = 0;
  /** A CR ended the last piece: an LF opening the next belongs to it. */
  #afterCr = false;
  /** The current event went past the bound: its size is counted, not kept, until its blank line. */
  #skipping = false;
  #skippedSize = 0;
  /** Characters of the current line while skipping: none at a line end means a blank line. */
  #skipLine = 0;
  /** What an event past the bound is read for (none: skipped unread), and that event while it passes. */
  readonly #wanted: WantedMembers | undefined;
  #large: LargeEvent | undefined;

  constructor(sink: SseSink, max = MAX_EVENT_BYTES, wanted?: WantedMembers) {
    this.#sink = sink;
    this.#max = max;
    this.#wanted = wanted;
  }

  push(chunk: Buffer): void {
    if (chunk.length > 0) this.#scan(this.#decoder.write(chunk));
  }

  /**
   * The body ended: an event the stream did not close with a blank line is still handed over (the
   * vendor billed for it whether or not a strict client would have read it).
   */
  end(): void {
    this.#scan(this.#decoder.end());
    if (this.#partial.length > 0 || this.#skipLine > 0) this.#line('');
    this.#dispatch();
  }

  #scan(text: string): void {
    if (text.length === 0) return;
    let at = 0;
    if (this.#afterCr) {
      this.#afterCr = false;
      if (text.charCodeAt(0) === LF) at = 1;
    }
    // Most streams end lines in LF alone: CR is looked for only when the piece holds one.
    let cr = text.indexOf('\r', at);
    while (at < text.length) {
      let end = text.indexOf('\n', at);
      if (cr !== -1) {
        if (cr < at) cr = text.indexOf('\r', at);
        if (cr !== -1 && (end === -1 || cr < end)) end = cr;
      }
      if (end === -1) return this.#keep(text.slice(at));
      this.#line(text.slice(at, end));
      if (text.charCodeAt(end) === CR) {
        if (end + 1 === text.length) {
          this.#afterCr = true;
          return;
        }
        at = text.charCodeAt(end + 1) === LF ? end + 2 : end + 1;
      } else at = end + 1;
    }
  }

  /** Keeps a line's beginning (no line end in it) until the rest arrives. */
  #keep(piece: string): void {
    if (this.#skipping) {
      this.#skippedSize += piece.length;
      this.#skipLine += piece.length;
      this.#large?.piece(piece);
      return;
    }
    this.#partial += piece;
    if (this.#partial.length + this.#dataSize > this.#max) this.#startSkipping();
  }

  /** The event outgrew the bound: what was kept of it is let go (handed to a LargeEvent when one is wanted). */
  #startSkipping(): void {
    this.#skipping = true;
    this.#skippedSize += this.#partial.length + this.#dataSize;
    this.#skipLine = this.#partial.length;
    if (this.#wanted !== undefined) {
      this.#large = new LargeEvent(this.#wanted, this.#name, this.#data);
      this.#large.piece(this.#partial);
    }
    this.#partial = '';
    this.#data = [];
    this.#dataSize = 0;
  }

  /** A line ended: `rest` is what came since the kept beginning. */
  #line(rest: string): void {
    if (this.#skipping) {
      this.#skippedSize += rest.length;
      // Only a blank line closes the skipped event.
      if (this.#skipLine + rest.length === 0) this.#dispatch();
      else {
        this.#large?.piece(rest);
        this.#large?.lineEnd();
      }
      this.#skipLine = 0;
      return;
    }
    let line = rest;
    if (this.#partial.length > 0) {
      line = this.#partial + rest;
      this.#partial = '';
    }
    if (line.length === 0) return this.#dispatch();
    if (line.length + this.#dataSize > this.#max) {
      this.#partial = line;
      this.#startSkipping();
      this.#large?.lineEnd();
      this.#skipLine = 0; // the line has ended: the next starts afresh
      return;
    }
    if (line.startsWith('data:')) {
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      this.#data.push(value);
      this.#dataSize += value.length;
    } else if (line.startsWith('event:')) this.#name = line.charCodeAt(6) === 32 ? line.slice(7) : line.slice(6);
    // A line `data` with no colon is an empty data line; any other field (id, retry) or comment is passed over.
    else if (line === 'data') this.#data.push('');
  }

  #dispatch(): void {
    const name = this.#name;
    const data = this.#data;
    this.#name = undefined;
    this.#data = [];
    this.#dataSize = 0;
    if (this.#skipping) {
      const large = this.#large;
      const size = this.#skippedSize;
      this.#skipping = false;
      this.#skippedSize = 0;
      this.#large = undefined;
      if (large === undefined) return this.#sink.skipped(size);
      // As for an event held: one without data is no event.
      if (!large.hasData) return;
      const members = large.members();
      if (members === undefined) this.#sink.skipped(size);
      else this.#sink.large(large.name, members, size);
      return;
    }
    // An event with no data is not dispatched (the format's rule): a lone `event:` line is nothing.
    if (data.length === 0) return;
    this.#sink.event(name, data.length === 1 ? data[0]! : data.join('\n'));
  }
}
