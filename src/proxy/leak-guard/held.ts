import { LRUCache } from 'lru-cache';
import { GRAM, GramGate } from './gate.ts';
import { redactAll, redactText, nameHoldsNeedle, type RedactionStyle, SecretScanner } from './index.ts';

// The real values keyway holds for one agent (captured tokens, the credentials its grants were
// served: proxy/stages/held-values.ts), as needles searched on every answer of the agent's connections,
// not only the answers to requests that carried one: an upstream that kept a token (a settings
// store, an uploaded file) hands it back on a later request that carried nothing.
//
// Hundreds of needles: each search is gated (leak-guard/gate.ts). Data that holds no piece of any
// needle, nearly all of it, costs one pass of the gate; data that does goes through the leak
// guard's full search (every encoded form, slices at the edges, base64 broken into lines).

export class HeldNeedles {
  readonly needles: readonly Buffer[];
  readonly #gate: GramGate;
  /** The gate over the needles in lower case: header names arrive lower-cased. */
  #lowerGate: GramGate | undefined;
  /** Subsets of the needles searched lately, by their indexes. */
  readonly #subsets = new LRUCache<string, readonly Buffer[]>({ max: 64 });
  /**
   * Header names and values already found to hold no needle. The same ones come with every answer
   * (an upstream's header names, its content-type), and the needles of this set never change, so a
   * verdict once reached stands: each is judged once, not once per answer.
   */
  readonly #cleanNames = new CleanTexts();
  readonly #cleanValues = new CleanTexts();

  /** The bytes any needle holds: a piece of one is a run of them. */
  readonly needleBytes = new Uint8Array(256);

  /** Whether a captured login's token is among them (login capture's promise: none reaches the agent, in slices either). */
  readonly captured: boolean;

  /**
   * When the agent holds nothing but one credential's needles (the one grant it uses): that array.
   * A request carrying that very credential searches for it already, and skips the held search.
   */
  readonly sole: readonly Buffer[] | undefined;

  constructor(needles: readonly Buffer[], captured = false, sole?: readonly Buffer[]) {
    this.needles = needles;
    this.captured = captured;
    this.sole = sole;
    this.#gate = new GramGate(needles);
    for (const needle of needles) for (const byte of needle) this.needleBytes[byte] = 1;
  }

  /**
   * A whole body (or message) with every held needle redacted: searched for the needles the gate
   * says may be in it (random hex in an answer meets a piece of a token's hex form now and then:
   * one or two needles are searched then, not all of them).
   */
  redactWhole(data: Buffer, style: RedactionStyle): { output: Buffer; count: number } {
    const candidates = this.#gate.candidates(data);
    if (candidates === undefined) return this.edgesMayBreak(data, true) ? redactAll(data, this.needles, style) : { output: data, count: 0 };
    return redactAll(data, this.#subset(candidates), style);
  }

  /**
   * Whether a slice of a needle at an edge of `data` may be broken into lines too short for the
   * gate's pieces (the full search finds a base64 slice at a body's edge across any line breaks):
   * the edge is a byte some needle holds, and the data has a line break. Rare in real answers (a
   * JSON document begins with a brace, an event stream ends with line feeds): cheap to ask.
   */
  edgesMayBreak(data: Buffer, atStart: boolean): boolean {
    const bytes = this.needleBytes;
    const n = data.length;
    if (n === 0 || !((atStart && bytes[data[0]!] === 1) || bytes[data[n - 1]!] === 1)) return false;
    return data.includes(0x0a) || data.includes(0x0d);
  }

  /** The needles at these indexes, as one array per set (a search plan is built once per array, leak-guard/plan.ts). */
  #subset(indexes: readonly number[]): readonly Buffer[] {
    if (indexes.length === this.needles.length) return this.needles;
    const key = indexes.join(',');
    let subset = this.#subsets.get(key);
    if (subset === undefined) {
      subset = indexes.map((i) => this.needles[i]!);
      this.#subsets.set(key, subset);
    }
    return subset;
  }

  /** Whether a header value is known to hold no held needle (found so before): it needs no redactValue. */
  cleanValue(value: string): boolean {
    return this.#cleanValues.has(value);
  }

  /** A header value (latin1) with every held needle redacted. */
  redactValue(value: string): { text: string; count: number } {
    if (this.#cleanValues.has(value)) return { text: value, count: 0 };
    const result = this.#gate.passesText(value) ? redactText(value, this.needles) : { text: value, count: 0 };
    if (result.count === 0) this.#cleanValues.add(value);
    return result;
  }

  /** Whether a header name (lower case) holds a held needle. */
  nameHolds(name: string): boolean {
    if (this.#cleanNames.has(name)) return false;
    this.#lowerGate ??= new GramGate(this.needles.map((n) => Buffer.from(n.toString('latin1').toLowerCase(), 'latin1')));
    const holds = this.#lowerGate.passesText(name) && nameHoldsNeedle(name, this.needles);
    if (!holds) this.#cleanNames.add(name);
    return holds;
  }

  /** A streaming scan of one body. */
  scanner(style: RedactionStyle): HeldScan {
    return new HeldScan(this, this.#gate, style);
  }
}

/**
 * The held needles over a stream: chunks pass through the gate, less what of their last GRAM - 1
 * bytes could start a piece the next chunk completes (a run of bytes some needle holds: an event
 * stream's closing line feeds are never held back), until some chunk holds a piece of a needle;
 * from then on the full scanner runs, joined part-way (no slice is looked for at a start it did
 * not see).
 */
export class HeldScan {
  readonly #held: HeldNeedles;
  readonly #gate: GramGate;
  readonly #style: RedactionStyle;
  #inner: SecretScanner | undefined;
  #tail: Buffer = EMPTY;
  #passed = false;

  constructor(held: HeldNeedles, gate: GramGate, style: RedactionStyle) {
    this.#held = held;
    this.#gate = gate;
    this.#style = style;
  }

  get redactions(): number {
    return this.#inner?.redactions ?? 0;
  }

  scan(chunk: Buffer): Buffer[] {
    if (this.#inner !== undefined) return this.#inner.scan(chunk);
    const data = this.#tail.length ? Buffer.concat([this.#tail, chunk]) : chunk;
    if (!this.#passed && data.length < GRAM && data.every((byte) => this.#held.needleBytes[byte] === 1)) {
      // The first bytes, too few to judge, and each one a needle could hold (the body may begin
      // with a slice of one): held until more come (or the end).
      this.#tail = Buffer.from(data);
      return [];
    }
    if (this.#gate.passes(data) || this.#held.edgesMayBreak(data, !this.#passed)) {
      this.#tail = EMPTY;
      this.#inner = new SecretScanner(this.#held.needles, this.#style, !this.#passed);
      return this.#inner.scan(data);
    }
    let keep = 0;
    while (keep < GRAM - 1 && keep < data.length && this.#held.needleBytes[data[data.length - 1 - keep]!] === 1) keep++;
    const out = data.subarray(0, data.length - keep);
    // A copy: the caller's chunk may be reused once this returns.
    this.#tail = Buffer.from(data.subarray(data.length - keep));
    if (out.length === 0) return [];
    this.#passed = true;
    return [out];
  }

  end(): Buffer {
    if (this.#inner !== undefined) return this.#inner.end();
    const rest = this.#tail;
    this.#tail = EMPTY;
    // Fewer than GRAM bytes: no needle, and no slice the full search would redact (MIN_SLICE).
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Texts found clean, bounded: at most MAX_CLEAN of at most MAX_CLEAN_LENGTH characters each (about
 * 32 KiB at worst, per agent that holds values: header names and common values are far shorter). An
 * upstream that sends a new value every time (a request id, the date) fills it, and it starts again
 * empty: the cost is then one lookup and one insertion per value.
 */
class CleanTexts {
  readonly #texts = new Set<string>();

  has(text: string): boolean {
    return this.#texts.has(text);
  }

  add(text: string): void {
    if (text.length > MAX_CLEAN_LENGTH) return;
    if (this.#texts.size >= MAX_CLEAN) this.#texts.clear();
    this.#texts.add(text);
  }
}

const MAX_CLEAN = 256;
const MAX_CLEAN_LENGTH = 128;
