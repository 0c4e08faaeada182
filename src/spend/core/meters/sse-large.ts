import { JsonMembers, type WantedMembers } from './json-members.ts';

// An SSE event past the reader's bound (sse.ts), read as it passes instead of held: its data lines
// (joined by LF, as the format joins them) are fed to a JsonMembers for the members its format
// reader names (the usage, the model, the event's type), and its `event:` name is kept. A
// Responses stream ends with `response.completed`, which repeats the whole response, base64 images
// included: tens of MiB in one event, whose usage is what the vendor billed.
//
// Lines are given in pieces, cut anywhere (a field name too): a line's first six characters say
// its field (`data:` with one optional space after it, `event:`, a bare `data`), as sse.ts reads
// them; other fields and comments are passed over. An event name longer than MAX_NAME characters
// is none a reader wants: the event is then not read.

const MAX_NAME = 256;

const UNKNOWN = 0;
const DATA = 1;
const NAME = 2;
const OTHER = 3;

export class LargeEvent {
  readonly #members: JsonMembers;
  #name: string | undefined;
  #nameTooLong = false;
  /** The current `event:` line's value has begun (a space before it is dropped only there). */
  #nameBegun = false;
  /** The current line's field (UNKNOWN until its first six characters came) and those characters. */
  #field = UNKNOWN;
  #head = '';
  #dataLines = 0;

  /** An event whose `name` and complete `data` lines so far were read as usual, until it grew past the bound. */
  constructor(wanted: WantedMembers, name: string | undefined, data: readonly string[]) {
    this.#members = new JsonMembers(wanted);
    this.#name = name;
    for (const line of data) {
      this.#startData();
      this.#feed(line);
    }
  }

  /** The event's name (its last `event:` line). */
  get name(): string | undefined {
    return this.#name;
  }

  /** Whether it had a data line (an event without one is no event). */
  get hasData(): boolean {
    return this.#dataLines > 0;
  }

  /** The wanted members of its data, or undefined when that is not a readable object (or its name is too long). */
  members(): Record<string, unknown> | undefined {
    return this.#nameTooLong ? undefined : this.#members.members();
  }

  /** A piece of the current line (no line end in it). */
  piece(text: string): void {
    if (text.length === 0) return;
    if (this.#field === UNKNOWN) {
      const take = 6 - this.#head.length;
      this.#head += text.slice(0, take);
      if (this.#head.length < 6) return;
      this.#decide();
      return this.piece(text.slice(take));
    }
    if (this.#field === DATA) this.#feed(text);
    else if (this.#field === NAME) this.#addName(text);
  }

  /** The current line ended. */
  lineEnd(): void {
    if (this.#field === UNKNOWN) {
      if (this.#head === 'data') this.#startData();
      else if (this.#head.length > 0) this.#decide();
    }
    this.#field = UNKNOWN;
    this.#head = '';
  }

  /** The line's first characters (six, or all of a shorter line) name its field; the rest of them is its value. */
  #decide(): void {
    const head = this.#head;
    if (head.startsWith('data:')) {
      this.#field = DATA;
      this.#startData();
      this.#feed(head.charCodeAt(5) === 32 ? head.slice(6) : head.slice(5));
    } else if (head.startsWith('event:')) {
      this.#field = NAME;
      this.#name = '';
      this.#nameTooLong = false;
      this.#nameBegun = false;
    } else this.#field = OTHER;
  }

  #startData(): void {
    if (this.#dataLines > 0) this.#feed('\n');
    this.#dataLines += 1;
  }

  #feed(text: string): void {
    if (text.length > 0) this.#members.push(Buffer.from(text, 'utf8'));
  }

  #addName(text: string): void {
    if (this.#nameTooLong) return;
    const name = (this.#name ?? '') + (!this.#nameBegun && text.charCodeAt(0) === 32 ? text.slice(1) : text);
    this.#nameBegun = true;
    if (name.length > MAX_NAME) {
      this.#nameTooLong = true;
      this.#name = undefined;
    } else this.#name = name;
  }
}
