// An incremental server-sent events reader (the WHATWG event-stream format) for the meters: fed the
// body in whatever pieces it arrives (mid-line, mid-character), it hands over each event as it
// completes and keeps only the current event's partial line and data. Lines end in LF, CRLF or CR
// (a CR at a piece's end and the LF that opens the next are one line end). An event larger than
// MAX_EVENT_BYTES is skipped whole and its size reported, so a stream never grows what is held.
//
// Only `event:` and `data:` matter to the meters; `id:`, `retry:` and comments are passed over.

/** The most one event may hold (its data and its partial line); the meters' bound for a JSON body too. */
export const MAX_EVENT_BYTES = 8 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;

export interface SseSink {
  /** One complete event: its `event:` name (undefined when it gave none) and its data lines joined by LF. */
  event(name: string | undefined, data: string): void;
  /** An event too large to read was skipped: `bytes` of it went by unread. */
  skipped(bytes: number): void;
}

export class SseReader {
  readonly #sink: SseSink;
  readonly #max: number;
  /** The current line's bytes so far (pieces, joined when the line ends). */
  #line: Buffer[] = [];
  #lineBytes = 0;
  /** The current event's name and data lines. */
  #name: string | undefined;
  #data: string[] = [];
  #dataBytes = 0;
  /** A CR ended the last piece: an LF opening the next belongs to it. */
  #afterCr = false;
  /** The current event went past the bound: its bytes are counted, not kept, until its blank line. */
  #skipping = false;
  #skippedBytes = 0;
  /** Bytes of the current line while skipping: none at a line end means a blank line. */
  #skipLineBytes = 0;

  constructor(sink: SseSink, max = MAX_EVENT_BYTES) {
    this.#sink = sink;
    this.#max = max;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let at = 0;
    if (this.#afterCr) {
      this.#afterCr = false;
      if (chunk[0] === LF) at = 1;
    }
    while (at < chunk.length) {
      const end = lineEnd(chunk, at);
      if (end === -1) return this.#keep(chunk.subarray(at));
      this.#keep(chunk.subarray(at, end));
      this.#lineDone();
      if (chunk[end] === CR) {
        if (end + 1 === chunk.length) {
          this.#afterCr = true;
          return;
        }
        at = chunk[end + 1] === LF ? end + 2 : end + 1;
      } else at = end + 1;
    }
  }

  /**
   * The body ended: an event the stream did not close with a blank line is still handed over (the
   * vendor billed for it whether or not a strict client would have read it).
   */
  end(): void {
    if (this.#lineBytes > 0 || this.#skipLineBytes > 0) this.#lineDone();
    this.#dispatch();
  }

  #keep(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.#skipping) {
      this.#skippedBytes += bytes.length;
      this.#skipLineBytes += bytes.length;
      return;
    }
    this.#line.push(bytes);
    this.#lineBytes += bytes.length;
    if (this.#lineBytes + this.#dataBytes > this.#max) this.#startSkipping();
  }

  #startSkipping(): void {
    this.#skipping = true;
    this.#skippedBytes += this.#lineBytes + this.#dataBytes;
    this.#skipLineBytes = this.#lineBytes;
    this.#line = [];
    this.#lineBytes = 0;
    this.#data = [];
    this.#dataBytes = 0;
  }

  #lineDone(): void {
    if (this.#skipping) {
      // Only a blank line closes the skipped event.
      if (this.#skipLineBytes === 0) this.#dispatch();
      this.#skipLineBytes = 0;
      return;
    }
    const bytes = this.#lineBytes;
    const line = bytes === 0 ? '' : (this.#line.length === 1 ? this.#line[0]! : Buffer.concat(this.#line, bytes)).toString('utf8');
    this.#line = [];
    this.#lineBytes = 0;
    if (line === '') return this.#dispatch();
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.#data.push(value);
      this.#dataBytes += bytes;
    } else if (field === 'event') this.#name = value;
  }

  #dispatch(): void {
    const name = this.#name;
    const data = this.#data;
    this.#name = undefined;
    this.#data = [];
    this.#dataBytes = 0;
    if (this.#skipping) {
      this.#skipping = false;
      this.#sink.skipped(this.#skippedBytes);
      this.#skippedBytes = 0;
      return;
    }
    // An event with no data is not dispatched (the format's rule): a lone `event:` line is nothing.
    if (data.length === 0) return;
    this.#sink.event(name, data.length === 1 ? data[0]! : data.join('\n'));
  }
}

/** The index of the next LF or CR at or after `from`, or -1. */
function lineEnd(chunk: Buffer, from: number): number {
  const lf = chunk.indexOf(LF, from);
  // CR alone ends lines only in rare streams: look for one only before the LF found (or to the end).
  const cr = chunk.subarray(from, lf === -1 ? chunk.length : lf).indexOf(CR);
  if (cr !== -1) return from + cr;
  return lf;
}
