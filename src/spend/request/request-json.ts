import { MODEL_NAME_MAX, OTHER_MODEL } from '../core/model-name.ts';
import type { RequestFacts } from '../core/request-facts.ts';

// A metered request's body read as it goes up (issue 85), strictly, so that what keyway reads is
// what the vendor reads, whatever server (a lenient gateway, Google's proto-JSON) sits in front:
//
// What it admits: exactly one JSON object (RFC 8259), UTF-8 with no BOM, whitespace around it and
// nothing else; no comments, no trailing commas, no NaN or Infinity, no single quotes; nesting at
// most MAX_DEPTH deep; in every object, no two member names alike once case is folded and `_`
// removed (`stream` and `Stream`, `generation_config` and `generationConfig`: a lenient server may
// read either, or both); member names at most MAX_NAME_BYTES long, with no raw control character;
// escapes in strings as RFC 8259 lists them. With `lowerNames` (OpenAI and Anthropic, whose
// members are all snake_case) every top-level name is `^[a-z][a-z0-9_]*$`: `"Stream": true`, which
// a case-blind gateway honours, is not. Everything else is refused, with a one-line reason that
// names a byte offset, never what the agent wrote.
//
// Not checked, because no reading of the members depends on it: raw control characters and
// invalid UTF-8 inside string values (the bulk of a body, skipped with native scans: a body of
// images is many MiB).
//
// What it collects (the facts, request-facts.ts), matching names the way a lenient server would
// (case folded, `_` removed): the top-level `model` string; the output cap (`max_tokens`,
// `max_output_tokens`, `max_completion_tokens`, Gemini's `generationConfig.maxOutputTokens`, and
// for Code Assist the same under `request`); what a request continues (`previous_response_id`,
// `conversation`, Gemini's `cachedContent`). Nothing is held but a member name or a short value.

/** The deepest nesting admitted: agents' bodies (tool schemas, tool arguments) stay far below. */
export const MAX_DEPTH = 128;
/** The longest member name admitted, in bytes. */
export const MAX_NAME_BYTES = 1024;
/**
 * The most bytes of member names held at once, over every object still open (each keeps its
 * names, to tell two alike apart). A body with more is refused: it is no agent's, and the names
 * would otherwise be memory an agent grows at will (48k names of 1 KiB in one object held ~60 MiB).
 * Agents' largest bodies (a hundred tools' schemas) hold a few tens of KiB of names at once.
 */
export const MAX_HELD_NAME_BYTES = 1024 * 1024;

/** Where a member's value says something: its path of folded names (`[]`: any array element). */
type Role = 'model' | 'cap' | 'continues';
const ROLES: ReadonlyMap<string, Role> = new Map<string, Role>([
  ['model', 'model'],
  ['maxtokens', 'cap'],
  ['maxoutputtokens', 'cap'],
  ['maxcompletiontokens', 'cap'],
  ['generationconfig.maxoutputtokens', 'cap'],
  ['request.generationconfig.maxoutputtokens', 'cap'],
  ['previousresponseid', 'continues'],
  ['conversation', 'continues'],
  ['cachedcontent', 'continues'],
  ['request.cachedcontent', 'continues'],
]);
/** The objects whose members may have a role. */
const PREFIXES: ReadonlySet<string> = new Set(['', 'generationconfig', 'request', 'request.generationconfig']);

const LOWER_NAME = /^[a-z][a-z0-9_]*$/;

// What the reader expects next.
const S_VALUE = 0; // a value (after `:` or at the root)
const S_ARRAY_FIRST = 1; // a value or `]`
const S_ARRAY_NEXT = 2; // a value (after `,`: no trailing comma)
const S_AFTER_VALUE = 3; // `,` or the container's close
const S_OBJECT_FIRST = 4; // a name or `}`
const S_OBJECT_NEXT = 5; // a name (after `,`)
const S_COLON = 6;
const S_NAME = 7; // inside a member name
const S_STRING = 8; // inside a string value
const S_NUMBER = 9;
const S_LITERAL = 10;
const S_DONE = 11; // the root object closed: whitespace only

const OBJECT = 1;
const ARRAY = 2;

const LITERALS = ['true', 'false', 'null'] as const;

export class RequestJsonReader {
  readonly #lowerNames: boolean;
  #state = S_VALUE;
  /** Bytes read before the current chunk: offsets in reasons are the body's. */
  #offset = 0;
  #refused: string | undefined = undefined;
  // The open containers, by depth (1: the root object).
  #depth = 0;
  readonly #kinds: number[] = [0];
  /** Per open object: the folded names seen (a Set once it has many). */
  readonly #names: (string[] | Set<string> | undefined)[] = [undefined];
  /** Bytes of names each open object holds, and their sum (MAX_HELD_NAME_BYTES). */
  readonly #heldNames: number[] = [0];
  #heldNameBytes = 0;
  /** Per open object: its path of folded names when members in it may have a role, else undefined. */
  readonly #paths: (string | undefined)[] = [undefined];
  /** The current member's path (when its object has one) and role. */
  #memberPath: string | undefined = undefined;
  #role: Role | undefined = undefined;
  // A member name or a captured value, as latin1 text (one char a byte), across chunks.
  #text = '';
  #textBytes = 0;
  #ascii = true;
  #escaped = false;
  /** In a string: hex digits of a \u escape still to come (-1: the byte after a backslash). */
  #escape = 0;
  #capture = false;
  // A number's grammar: 0 sign, 1 int first, 2 int rest, 3 after leading zero, 4 frac first, 5 frac rest, 6 exp sign, 7 exp first, 8 exp rest.
  #number = 0;
  #literal = '';
  #literalAt = 0;
  #stringRole: Role | undefined = undefined;
  // The facts.
  #model: string | null = null;
  #cap: number | null = null;
  #continues: string | null = null;

  constructor(lowerNames: boolean) {
    this.#lowerNames = lowerNames;
  }

  /** Why the body was refused (the first reason), or undefined while it reads as admitted. */
  get refused(): string | undefined {
    return this.#refused;
  }

  /** What the body continues, as read so far (null: nothing). */
  get continues(): string | null {
    return this.#continues;
  }

  /**
   * What the body said. Of a refused body (read without a budget), only what it continues: its
   * model and cap may be ones the vendor did not read (the first of two), so none are taken (the
   * count is then unpriced, flagged, and its output floor the vendor's default).
   */
  facts(): RequestFacts {
    if (this.#refused !== undefined) return { model: null, maxOutputTokens: null, continues: this.#continues };
    return { model: this.#model, maxOutputTokens: this.#cap, continues: this.#continues };
  }

  /** Reads the next piece; returns the reason once the body is refused (then reads nothing more). */
  push(chunk: Buffer): string | undefined {
    if (this.#refused !== undefined) return this.#refused;
    const reason = this.#read(chunk);
    this.#offset += chunk.length;
    if (reason !== undefined) this.#refused = reason;
    return this.#refused;
  }

  /** The body ended: the reason when it is not one whole object. */
  end(): string | undefined {
    if (this.#refused !== undefined) return this.#refused;
    if (this.#state !== S_DONE) this.#refused = `the body ends inside its JSON (byte ${this.#offset})`;
    return this.#refused;
  }

  #read(buf: Buffer): string | undefined {
    const n = buf.length;
    let i = 0;
    // Cached native-scan positions for string values (-2: not looked for yet in this chunk).
    let quote = -2;
    let backslash = -2;
    while (i < n) {
      const state = this.#state;
      if (state === S_STRING) {
        if (this.#escape !== 0) {
          const r = this.#escapeByte(buf[i]!, i);
          if (r !== undefined) return r;
          if (this.#capture) this.#keep(buf, i, i + 1);
          i++;
          continue;
        }
        if (quote !== -1 && quote < i) quote = buf.indexOf(0x22, i);
        if (backslash !== -1 && backslash < i) backslash = buf.indexOf(0x5c, i);
        if (backslash !== -1 && (quote === -1 || backslash < quote)) {
          if (this.#capture) this.#keep(buf, i, backslash + 1);
          this.#escape = -1;
          this.#escaped = true;
          i = backslash + 1;
          continue;
        }
        if (quote === -1) {
          if (this.#capture) this.#keep(buf, i, n);
          return undefined;
        }
        if (this.#capture) this.#keep(buf, i, quote);
        this.#endString();
        i = quote + 1;
        continue;
      }
      const c = buf[i]!;
      if (state === S_NAME) {
        const r = this.#nameByte(buf, i);
        if (typeof r === 'string') return r;
        i = r;
        continue;
      }
      if (state === S_NUMBER) {
        if (this.#numberByte(c)) {
          if (this.#capture) this.#keep(buf, i, i + 1);
          i++;
          continue;
        }
        const r = this.#endNumber(i);
        if (r !== undefined) return r;
        continue; // the byte that ended it is read again
      }
      if (state === S_LITERAL) {
        if (c !== this.#literal.charCodeAt(this.#literalAt)) return `not JSON at byte ${this.#offset + i}`;
        if (++this.#literalAt === this.#literal.length) this.#endValue(this.#literal);
        i++;
        continue;
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      const r = this.#structural(c, i);
      if (r !== undefined) return r;
      i++;
    }
    return undefined;
  }

  /** A byte outside strings, numbers and literals, not whitespace. */
  #structural(c: number, i: number): string | undefined {
    const at = this.#offset + i;
    switch (this.#state) {
      case S_DONE:
        return `more than one JSON value in the body (byte ${at})`;
      case S_COLON:
        if (c !== 0x3a) return `not JSON at byte ${at}: a member name without ':'`;
        this.#state = S_VALUE;
        return undefined;
      case S_OBJECT_FIRST:
        if (c === 0x7d) return this.#close(OBJECT, at);
        if (c !== 0x22) return `not JSON at byte ${at}: a member name must be a string`;
        this.#startName();
        return undefined;
      case S_OBJECT_NEXT:
        if (c !== 0x22) return c === 0x7d ? `a trailing comma at byte ${at}` : `not JSON at byte ${at}: a member name must be a string`;
        this.#startName();
        return undefined;
      case S_AFTER_VALUE: {
        const kind = this.#kinds[this.#depth]!;
        if (c === 0x2c) {
          this.#state = kind === OBJECT ? S_OBJECT_NEXT : S_ARRAY_NEXT;
          return undefined;
        }
        if (c === 0x7d && kind === OBJECT) return this.#close(OBJECT, at);
        if (c === 0x5d && kind === ARRAY) return this.#close(ARRAY, at);
        return c === 0x2f ? `a comment at byte ${at}` : `not JSON at byte ${at}`;
      }
      case S_VALUE:
        if (c === 0x7d || c === 0x5d) return `not JSON at byte ${at}: a value is missing`;
        return this.#startValue(c, i);
      case S_ARRAY_FIRST:
        if (c === 0x5d) return this.#close(ARRAY, at);
        return this.#startValue(c, i);
      case S_ARRAY_NEXT:
        if (c === 0x5d) return `a trailing comma at byte ${at}`;
        return this.#startValue(c, i);
      default:
        return this.#startValue(c, i);
    }
  }

  #startValue(c: number, i: number): string | undefined {
    const at = this.#offset + i;
    if (this.#depth === 0 && c !== 0x7b) {
      if (c === 0xef) return 'a byte order mark before the JSON (byte 0)';
      return `the body is not one JSON object (byte ${at})`;
    }
    const role = this.#depth === 0 ? undefined : this.#role;
    if (c === 0x7b || c === 0x5b) {
      if (this.#depth === MAX_DEPTH) return `JSON nested deeper than ${MAX_DEPTH} (byte ${at})`;
      const depth = ++this.#depth;
      this.#kinds[depth] = c === 0x7b ? OBJECT : ARRAY;
      this.#names[depth] = undefined;
      this.#heldNames[depth] = 0;
      // An object under a member whose path may lead to a role; the root's path is ''.
      const path = depth === 1 ? '' : this.#kinds[depth - 1] === OBJECT ? this.#memberPath : undefined;
      this.#paths[depth] = c === 0x7b && path !== undefined && PREFIXES.has(path) ? path : undefined;
      if (role === 'continues') this.#continues = 'object';
      this.#state = c === 0x7b ? S_OBJECT_FIRST : S_ARRAY_FIRST;
      this.#role = undefined;
      return undefined;
    }
    if (c === 0x22) {
      this.#state = S_STRING;
      this.#stringRole = role;
      this.#startText(role === 'model' || role === 'continues');
      return undefined;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      this.#state = S_NUMBER;
      this.#number = 0;
      this.#startText(role === 'cap');
      this.#numberByte(c);
      if (this.#capture) {
        this.#text = String.fromCharCode(c);
        this.#textBytes = 1;
      }
      return undefined;
    }
    const literal = c === 0x74 ? LITERALS[0] : c === 0x66 ? LITERALS[1] : c === 0x6e ? LITERALS[2] : undefined;
    if (literal !== undefined) {
      this.#state = S_LITERAL;
      this.#literal = literal;
      this.#literalAt = 1;
      return undefined;
    }
    if (c === 0x2f) return `a comment at byte ${at}`;
    if (c === 0x2c) return `a trailing comma at byte ${at}`;
    return `not JSON at byte ${at}`;
  }

  /** A value ended (a string, a number, a literal): its role is recorded, then `,` or a close is expected. */
  #endValue(value: string | null): void {
    const role = this.#depth === 0 ? undefined : this.#role;
    this.#role = undefined;
    this.#state = this.#depth === 0 ? S_DONE : S_AFTER_VALUE;
    if (role === 'continues' && value !== 'null' && value !== 'false' && value !== '') this.#continues = value ?? 'a value';
  }

  #close(kind: number, at: number): string | undefined {
    if (this.#kinds[this.#depth] !== kind) return `not JSON at byte ${at}`;
    this.#names[this.#depth] = undefined;
    this.#heldNameBytes -= this.#heldNames[this.#depth] ?? 0;
    this.#heldNames[this.#depth] = 0;
    this.#depth--;
    this.#role = undefined;
    this.#state = this.#depth === 0 ? S_DONE : S_AFTER_VALUE;
    return undefined;
  }

  #startText(capture: boolean): void {
    this.#capture = capture;
    this.#escaped = false;
    this.#escape = 0;
    if (capture) {
      this.#text = '';
      this.#textBytes = 0;
    }
  }

  /** Keeps bytes of a captured value, up to a bound (a longer model name is OTHER_MODEL anyway). */
  #keep(buf: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.#textBytes <= MODEL_NAME_MAX * 2) this.#text += buf.toString('latin1', from, Math.min(to, from + MODEL_NAME_MAX * 2 + 1));
    this.#textBytes += to - from;
  }

  /** One byte of an escape in a string (value or name). */
  #escapeByte(c: number, i: number): string | undefined {
    if (this.#escape === -1) {
      if (c === 0x75) this.#escape = 4;
      else if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74) this.#escape = 0;
      else return `an escape JSON does not have at byte ${this.#offset + i}`;
      return undefined;
    }
    const hex = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
    if (!hex) return `an escape JSON does not have at byte ${this.#offset + i}`;
    this.#escape--;
    return undefined;
  }

  #endString(): void {
    const role = this.#stringRole;
    this.#state = S_AFTER_VALUE;
    if (!this.#capture) return this.#endValue(null);
    const long = this.#textBytes > MODEL_NAME_MAX * 2;
    let text: string;
    try {
      text = decoded(this.#text, true, this.#escaped);
    } catch {
      text = OTHER_MODEL; // an escape cut at the bound
    }
    if (role === 'model' && this.#depth === 1) this.#model = long || text.length > MODEL_NAME_MAX ? OTHER_MODEL : text;
    this.#endValue(long ? 'a long value' : text);
  }

  // Member names.

  #startName(): void {
    this.#state = S_NAME;
    this.#text = '';
    this.#textBytes = 0;
    this.#ascii = true;
    this.#escaped = false;
    this.#escape = 0;
  }

  /** Reads a member name's bytes from `i`: the next index, or a reason. */
  #nameByte(buf: Buffer, i: number): number | string {
    const n = buf.length;
    let j = i;
    while (j < n && this.#escape !== 0) {
      const r = this.#escapeByte(buf[j]!, j);
      if (r !== undefined) return r;
      j++;
    }
    for (; j < n; j++) {
      const c = buf[j]!;
      if (c === 0x22) break;
      if (c > 0x7f) this.#ascii = false;
      else if (c < 0x20) return `a control character in a member name at byte ${this.#offset + j}`;
      if (c === 0x5c) {
        this.#escaped = true;
        this.#escape = -1;
        j++;
        // The rest of the escape is read here, byte by byte (names are short).
        while (j < n && this.#escape !== 0) {
          const r = this.#escapeByte(buf[j]!, j);
          if (r !== undefined) return r;
          j++;
        }
        j--;
      }
    }
    this.#textBytes += j - i;
    if (this.#textBytes > MAX_NAME_BYTES) return `a member name over ${MAX_NAME_BYTES} bytes at byte ${this.#offset + i}`;
    // Most names are whole in one piece, ASCII, with no escape: read where they are.
    const whole = this.#text === '' && j < n && this.#ascii && !this.#escaped;
    if (whole) return this.#endName(buf.toString('latin1', i, j), this.#offset + j) ?? j + 1;
    this.#text += buf.toString('latin1', i, j);
    if (j === n) return j;
    let name: string;
    try {
      name = decoded(this.#text, !this.#ascii, this.#escaped);
    } catch {
      return `an escape JSON does not have in a member name before byte ${this.#offset + j}`;
    }
    return this.#endName(name, this.#offset + j) ?? j + 1;
  }

  #endName(name: string, at: number): string | undefined {
    this.#text = '';
    const depth = this.#depth;
    if (depth === 1 && this.#lowerNames && !LOWER_NAME.test(name)) return `a top-level member name outside [a-z][a-z0-9_]* (byte ${at})`;
    const folded = fold(name);
    this.#heldNameBytes += folded.length;
    this.#heldNames[depth] = (this.#heldNames[depth] ?? 0) + folded.length;
    if (this.#heldNameBytes > MAX_HELD_NAME_BYTES) return `more than ${MAX_HELD_NAME_BYTES} bytes of member names in open objects (byte ${at})`;
    const names = this.#names[depth];
    if (names === undefined) this.#names[depth] = [folded];
    else if (Array.isArray(names)) {
      if (names.includes(folded)) return `two member names alike, case and '_' aside (byte ${at})`;
      if (names.length < 8) names.push(folded);
      else this.#names[depth] = new Set([...names, folded]);
    } else {
      if (names.has(folded)) return `two member names alike, case and '_' aside (byte ${at})`;
      names.add(folded);
    }
    const path = this.#paths[depth];
    this.#memberPath = path === undefined ? undefined : path === '' ? folded : `${path}.${folded}`;
    this.#role = this.#memberPath === undefined ? undefined : ROLES.get(this.#memberPath);
    this.#state = S_COLON;
    return undefined;
  }

  // Numbers.

  /** Whether `c` continues the number (its grammar advanced), else the number ends before it. */
  #numberByte(c: number): boolean {
    const digit = c >= 0x30 && c <= 0x39;
    switch (this.#number) {
      case 0: // start: '-' or a digit
        if (c === 0x2d) this.#number = 1;
        else this.#number = c === 0x30 ? 3 : 2;
        return true;
      case 1:
        if (!digit) return false;
        this.#number = c === 0x30 ? 3 : 2;
        return true;
      case 2:
      case 3:
        if (digit && this.#number === 2) return true;
        // After the integer part (or a leading zero): a fraction or an exponent.
        if (c === 0x2e) this.#number = 4;
        else if (c === 0x65 || c === 0x45) this.#number = 6;
        else return false;
        return true;
      case 4:
        if (!digit) return false;
        this.#number = 5;
        return true;
      case 5:
        if (digit) return true;
        if (c === 0x65 || c === 0x45) this.#number = 6;
        else return false;
        return true;
      case 6:
        if (c === 0x2b || c === 0x2d) this.#number = 7;
        else if (digit) this.#number = 8;
        else return false;
        return true;
      case 7:
        if (!digit) return false;
        this.#number = 8;
        return true;
      default:
        return digit;
    }
  }

  #endNumber(i: number): string | undefined {
    // A number may end only after a digit: in states 2, 3, 5 and 8.
    const s = this.#number;
    if (s !== 2 && s !== 3 && s !== 5 && s !== 8) return `not JSON at byte ${this.#offset + i}: a number cut short`;
    if (this.#capture && this.#depth > 0) {
      // A number longer than what is kept (`0.000…5e304`, which a parser reads as 5000) is not read
      // from its first characters: its cap is taken as the highest, so the floor errs high, never low.
      const value = this.#textBytes > this.#text.length ? Number.MAX_SAFE_INTEGER : Number(this.#text);
      if (Number.isFinite(value) && value >= 0) this.#cap = Math.max(this.#cap ?? 0, Math.ceil(value));
    }
    this.#endValue(null);
    return undefined;
  }
}

/** A member name as a lenient server may match it: case folded (Unicode's `ſ` and `K` too), `_` removed. */
function fold(name: string): string {
  let ascii = true;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) > 0x7f) ascii = false;
  const lower = ascii ? name.toLowerCase() : name.toUpperCase().toLowerCase();
  return lower.includes('_') ? lower.replaceAll('_', '') : lower;
}

/** Text kept as latin1 (a char a byte) back to what it says: UTF-8 decoded, escapes resolved (throws on a bad escape). */
function decoded(latin1: string, utf8: boolean, escaped: boolean): string {
  const text = utf8 ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
  return escaped ? (JSON.parse(`"${text}"`) as string) : text;
}
