// Reading a few top-level members of a whole JSON answer as it passes, without holding the answer
// (issue 63): Anthropic's and OpenAI's whole answers are read for `usage` and `model` only, and
// collecting the answer to parse it at the end held its chunks for the answer's life (up to 8 MiB).
// Where the members sit does not matter: Anthropic puts `usage` last, OpenAI's Chat Completions
// puts `service_tier` and `system_fingerprint` after it, the Responses object `user` and
// `metadata`, so neither "the last member" nor "the last N bytes" is a rule the vendors keep.
//
// What is admitted: one top-level object, with only JSON whitespace around it, whose strings and
// brackets balance and which closes at the end of the body. Its wanted members (by key, after
// JSON's escapes, the last of a repeated key winning as in JSON.parse) are each parsed by
// JSON.parse when they end; a wanted member larger than MAX_MEMBER_BYTES, one that does not parse,
// a body that does not close, or any other top-level value is refused: `readable` is false and the
// usage is then unknown (the caller flags it). The bytes between wanted members are scanned for
// strings and brackets only, not checked as JSON: the answer reached the client as it was, and its
// usage is what the vendor billed.
import { QUOTE, BACKSLASH, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET, COMMA, COLON } from './json-bytes.ts';

/** The most one wanted member may hold: a usage object and a model name fit many times over. */
export const MAX_MEMBER_BYTES = 64 * 1024;
/** Keys longer than this are none of the wanted ones (their bytes are not kept). */
const MAX_KEY_BYTES = 256;

const isSpace = (byte: number): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

export class JsonMembers {
  readonly #wanted: readonly string[];
  /** The members read so far (null-prototype: a key named `__proto__` is a member like any other). */
  readonly #found: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  #bytes = 0;
  /** 0 before the top-level object and after it; 1 inside it; more inside its members. */
  #depth = 0;
  #opened = false;
  #closed = false;
  #bad = false;
  #inString = false;
  #escaped = false;
  /** At depth 1, the next string is a key (after `{` or `,`). */
  #expectKey = false;
  /** The current key's bytes (while it is read), and the member it names once read. */
  #key: Buffer[] | undefined;
  #keyBytes = 0;
  #member: string | undefined;
  /** The wanted member's value is being kept: its pieces (copies, so no chunk is held). */
  #capturing = false;
  #pieces: Buffer[] = [];
  #pieceBytes = 0;

  constructor(wanted: readonly string[]) {
    this.#wanted = wanted;
  }

  /** Bytes seen. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes held between pieces (a wanted member cut by a piece's end, a key cut likewise): never the answer. */
  get held(): number {
    return this.#pieceBytes + this.#keyBytes;
  }

  /** The body was one top-level object that closed, with every wanted member it held readable. */
  get readable(): boolean {
    return this.#closed && !this.#bad;
  }

  /** The wanted members found (only when readable). */
  members(): Record<string, unknown> | undefined {
    return this.readable ? this.#found : undefined;
  }

  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bad) return;
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    // Where the current key or captured value started in this chunk (-1: before it).
    let keyStart = this.#key === undefined ? -2 : -1;
    let valueStart = this.#capturing ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (byte === BACKSLASH) escaped = true;
        else if (byte === QUOTE) {
          inString = false;
          if (keyStart !== -2) {
            this.#endKey(chunk, keyStart === -1 ? 0 : keyStart, i);
            keyStart = -2;
          }
        }
        continue;
      }
      if (depth === 0) {
        // Whitespace around the object; anything else after it, or a top-level value that is not one: refused.
        if (isSpace(byte)) continue;
        if (byte !== OPEN_BRACE || this.#opened) return this.#refuse();
        this.#opened = true;
        depth = 1;
        this.#expectKey = true;
        continue;
      }
      if (byte === QUOTE) {
        inString = true;
        if (depth === 1 && this.#expectKey) {
          this.#expectKey = false;
          this.#key = [];
          keyStart = i + 1;
        }
      } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth += 1;
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        if (depth === 1) {
          if (byte !== CLOSE_BRACE) return this.#refuse();
          if (valueStart !== -1 && !this.#endValue(chunk, valueStart, i)) return this.#refuse();
          valueStart = -1;
          depth = 0;
          this.#closed = true;
          continue;
        }
        depth -= 1;
      } else if (depth === 1) {
        if (byte === COLON && this.#member !== undefined) {
          this.#capturing = true;
          valueStart = i + 1;
        } else if (byte === COMMA) {
          if (valueStart !== -1 && !this.#endValue(chunk, valueStart, i)) return this.#refuse();
          valueStart = -1;
          this.#expectKey = true;
        }
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    if (keyStart !== -2) this.#keep(chunk, keyStart === -1 ? 0 : keyStart, chunk.length, true);
    if (valueStart !== -1) this.#keep(chunk, valueStart, chunk.length, false);
  }

  #refuse(): void {
    this.#bad = true;
    this.#key = undefined;
    this.#keyBytes = 0;
    this.#pieces = [];
    this.#pieceBytes = 0;
    this.#capturing = false;
  }

  /** Keeps a copy of a key's or a value's piece that the chunk's end cut (within the bounds). */
  #keep(chunk: Buffer, start: number, end: number, key: boolean): void {
    if (key) {
      if (this.#key === undefined) return;
      this.#keyBytes += end - start;
      if (this.#keyBytes > MAX_KEY_BYTES) {
        // Too long to be a wanted key: read on, keep nothing of it.
        this.#key = undefined;
        this.#keyBytes = 0;
      } else this.#key.push(Buffer.from(chunk.subarray(start, end)));
      return;
    }
    this.#pieceBytes += end - start;
    if (this.#pieceBytes > MAX_MEMBER_BYTES) return this.#refuse();
    this.#pieces.push(Buffer.from(chunk.subarray(start, end)));
  }

  /** A key's closing quote at `end`: which wanted member (if any) its value is. */
  #endKey(chunk: Buffer, start: number, end: number): void {
    const pieces = this.#key;
    this.#key = undefined;
    this.#member = undefined;
    const held = this.#keyBytes;
    this.#keyBytes = 0;
    if (pieces === undefined || held + end - start > MAX_KEY_BYTES) return;
    let raw: Buffer;
    if (pieces.length === 0) raw = chunk.subarray(start, end);
    else {
      pieces.push(chunk.subarray(start, end));
      raw = Buffer.concat(pieces);
    }
    let key: string;
    if (raw.includes(BACKSLASH)) {
      try {
        key = JSON.parse(`"${raw.toString('utf8')}"`) as string;
      } catch {
        return;
      }
    } else key = raw.toString('latin1');
    if (this.#wanted.includes(key)) this.#member = key;
  }

  /** A wanted member's value ended before `end` (a `,` or the closing `}`): parses it; false when it does not parse. */
  #endValue(chunk: Buffer, start: number, end: number): boolean {
    const member = this.#member!;
    this.#member = undefined;
    this.#capturing = false;
    const pieces = this.#pieces;
    const size = this.#pieceBytes + end - start;
    this.#pieces = [];
    this.#pieceBytes = 0;
    if (size > MAX_MEMBER_BYTES) return false;
    const text = pieces.length === 0 ? chunk.toString('utf8', start, end) : Buffer.concat([...pieces, chunk.subarray(start, end)]).toString('utf8');
    try {
      this.#found[member] = JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  }
}
