// Reading a few members of a JSON object as it passes, without holding the object (issue 63, and
// issue 85's "no usage lost to size"). Anthropic's and OpenAI's whole answers are read for `usage`
// and `model` only; an SSE event or a Gemini array element too large to hold (past the meters'
// 8 MiB bound: a Responses `response.completed` that repeats three base64 images, a Gemini answer
// with an image inline) is read for the members that carry its usage, one level down where the
// vendor nests them (`response.usage`). Where the members sit does not matter: Anthropic puts
// `usage` last, OpenAI's Chat Completions puts `service_tier` and `system_fingerprint` after it,
// the Responses object `user` and `metadata`, so neither "the last member" nor "the last N bytes"
// is a rule the vendors keep.
//
// What is admitted: one top-level object, with only JSON whitespace around it, whose strings and
// brackets balance and which closes at the end of the body. A wanted member is named by its path
// of keys from the top (`usage`, or `response` then `usage`), keys compared after JSON's escapes,
// the last of a repeated key winning as in JSON.parse (a repeated `response` replaces what was read
// inside the first). Each wanted value is parsed by JSON.parse when it ends; a wanted member larger
// than MAX_MEMBER_BYTES, one that does not parse, an object on a wanted path closed by `]`, a body
// that does not close, or any other top-level value is refused: `readable` is false and the usage
// is then unknown (the caller flags it). A member on a wanted path whose value is not an object is
// read as null (JSON.parse would give a value the readers pass over too). The bytes between wanted
// members are scanned for strings and brackets only, not checked as JSON: the answer reached the
// client as it was, and its usage is what the vendor billed. Inside a string the scan jumps from
// quote to backslash to quote (Buffer.indexOf), so 20 MiB of base64 costs a memchr, not a loop.
import { QUOTE, BACKSLASH, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET, COMMA, COLON, indexOr } from './json-bytes.ts';

/** The most one wanted member may hold: a usage object and a model name fit many times over. */
export const MAX_MEMBER_BYTES = 64 * 1024;
/** Keys longer than this are none of the wanted ones (their bytes are not kept). */
const MAX_KEY_BYTES = 256;

/** Wanted members: a top-level key, or a path of keys from the top (`['response', 'usage']`). */
export type WantedMembers = readonly (string | readonly string[])[];

/** The wanted paths as a tree: a key maps to true (its value is read) or to the keys wanted inside it. */
type Wanted = Map<string, Wanted | true>;

/** An object on a wanted path being read: the keys wanted in it, and where its members go. */
interface Frame {
  readonly wanted: Wanted;
  readonly found: Record<string, unknown>;
}

const isSpace = (byte: number): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
const record = (): Record<string, unknown> => Object.create(null) as Record<string, unknown>;

/** Trees are made once per list of members (a reader's list is a module constant). */
const trees = new WeakMap<WantedMembers, Wanted>();
function treeOf(members: WantedMembers): Wanted {
  let tree = trees.get(members);
  if (tree !== undefined) return tree;
  tree = new Map();
  for (const member of members) {
    const path = typeof member === 'string' ? [member] : member;
    let at: Wanted | undefined = tree;
    for (let i = 0; i < path.length && at !== undefined; i++) {
      const key = path[i]!;
      if (i === path.length - 1) {
        at.set(key, true);
        break;
      }
      let next = at.get(key);
      if (next === undefined) {
        next = new Map();
        at.set(key, next);
      }
      // A key whose whole value is read already needs none of its members named.
      at = next === true ? undefined : next;
    }
  }
  trees.set(members, tree);
  return tree;
}

export class JsonMembers {
  readonly #tree: Wanted;
  /** The members read so far (null-prototype objects: a key named `__proto__` is a member like any other). */
  #found: Record<string, unknown> = record();
  /** The objects on a wanted path now open: the top-level object at depth 1, the one inside it at 2. */
  readonly #frames: Frame[] = [];
  #bytes = 0;
  /** 0 before the top-level object and after it; 1 inside it; more inside its members. */
  #depth = 0;
  #opened = false;
  #closed = false;
  #bad = false;
  #inString = false;
  #escaped = false;
  /** In the innermost open object on a wanted path, the next string is a key (after `{` or `,`). */
  #expectKey = false;
  /** The current key's bytes (while it is read), and the wanted member it names once read. */
  #key: Buffer[] | undefined;
  #keyBytes = 0;
  #member: string | undefined;
  #memberWanted: Wanted | true | undefined;
  /** After the `:` of a member on a wanted path: its value's first byte says whether it is an object. */
  #awaitObject = false;
  /** The wanted member's value is being kept: its pieces (copies, so no chunk is held). */
  #capturing = false;
  #pieces: Buffer[] = [];
  #pieceBytes = 0;

  constructor(wanted: WantedMembers) {
    this.#tree = treeOf(wanted);
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

  /** The wanted members found, nested as in the body (only when readable). */
  members(): Record<string, unknown> | undefined {
    return this.readable ? this.#found : undefined;
  }

  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bad) return;
    const length = chunk.length;
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    // Where the current key or captured value started in this chunk (-1: before it).
    let keyStart = this.#key === undefined ? -2 : -1;
    let valueStart = this.#capturing ? 0 : -1;
    // The next quote and backslash at or after i (length: none); recomputed only once passed.
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
          // The byte after it is escaped (it may open the next chunk).
          escaped = true;
          i = slash;
          continue;
        }
        if (quote === length) break;
        i = quote;
        inString = false;
        if (keyStart !== -2) {
          this.#endKey(chunk, keyStart === -1 ? 0 : keyStart, i);
          keyStart = -2;
        }
        continue;
      }
      const byte = chunk[i]!;
      if (depth === 0) {
        // Whitespace around the object; anything else after it, or a top-level value that is not one: refused.
        if (isSpace(byte)) continue;
        if (byte !== OPEN_BRACE || this.#opened) return this.#refuse();
        this.#opened = true;
        depth = 1;
        this.#frames.push({ wanted: this.#tree, found: this.#found });
        this.#expectKey = true;
        continue;
      }
      if (this.#awaitObject) {
        if (isSpace(byte)) continue;
        this.#awaitObject = false;
        const found = this.#frames[this.#frames.length - 1]!.found;
        const key = this.#member!;
        const wanted = this.#memberWanted as Wanted;
        this.#member = undefined;
        this.#memberWanted = undefined;
        if (byte === OPEN_BRACE) {
          // An object on a wanted path: its keys are read as the top-level object's are.
          const inner = record();
          found[key] = inner;
          this.#frames.push({ wanted, found: inner });
          depth += 1;
          this.#expectKey = true;
          continue;
        }
        found[key] = null;
      }
      const tracked = depth === this.#frames.length;
      if (byte === QUOTE) {
        inString = true;
        if (tracked && this.#expectKey) {
          this.#expectKey = false;
          this.#key = [];
          keyStart = i + 1;
        }
      } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth += 1;
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        if (tracked) {
          // The innermost object on a wanted path closes (the top-level one at depth 1).
          if (byte !== CLOSE_BRACE) return this.#refuse();
          if (valueStart !== -1 && !this.#endValue(chunk, valueStart, i)) return this.#refuse();
          valueStart = -1;
          this.#member = undefined;
          this.#frames.pop();
          depth -= 1;
          if (depth === 0) this.#closed = true;
          continue;
        }
        depth -= 1;
      } else if (tracked) {
        if (byte === COLON && this.#member !== undefined) {
          if (this.#memberWanted === true) {
            this.#capturing = true;
            valueStart = i + 1;
          } else this.#awaitObject = true;
        } else if (byte === COMMA) {
          if (valueStart !== -1 && !this.#endValue(chunk, valueStart, i)) return this.#refuse();
          valueStart = -1;
          this.#member = undefined;
          this.#expectKey = true;
        }
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    if (keyStart !== -2) this.#keep(chunk, keyStart === -1 ? 0 : keyStart, length, true);
    if (valueStart !== -1) this.#keep(chunk, valueStart, length, false);
  }

  #refuse(): void {
    this.#bad = true;
    this.#found = record();
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
    this.#memberWanted = undefined;
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
    const wanted = this.#frames[this.#frames.length - 1]!.wanted.get(key);
    if (wanted === undefined) return;
    this.#member = key;
    this.#memberWanted = wanted;
  }

  /** A wanted member's value ended before `end` (a `,` or the closing `}`): parses it; false when it does not parse. */
  #endValue(chunk: Buffer, start: number, end: number): boolean {
    const member = this.#member!;
    this.#member = undefined;
    this.#memberWanted = undefined;
    this.#capturing = false;
    const pieces = this.#pieces;
    const size = this.#pieceBytes + end - start;
    this.#pieces = [];
    this.#pieceBytes = 0;
    if (size > MAX_MEMBER_BYTES) return false;
    const text = pieces.length === 0 ? chunk.toString('utf8', start, end) : Buffer.concat([...pieces, chunk.subarray(start, end)]).toString('utf8');
    try {
      this.#frames[this.#frames.length - 1]!.found[member] = JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * The wanted members of a JSON text already held as a string (a WebSocket message past the bound),
 * fed in pieces so that no copy of the whole text is made; undefined when not readable.
 */
export function membersOfText(wanted: WantedMembers, text: string): Record<string, unknown> | undefined {
  const members = new JsonMembers(wanted);
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + TEXT_PIECE);
    // A piece never ends between the two halves of a surrogate pair.
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end += 1;
    members.push(Buffer.from(text.slice(at, end), 'utf8'));
    at = end;
  }
  return members.members();
}

const TEXT_PIECE = 64 * 1024;
const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
