import { BYTES_PER_TOKEN, type ModelUsage, type UsageReading } from '../usage.ts';

// What one answer's meter has seen so far, whatever the format: the usage the answer reported (the
// latest value of each count), whether that was its final word, and what output reached the client
// (content deltas and their characters), so an answer cut short is still counted for what was
// delivered. The format readers (anthropic.ts, openai.ts, gemini.ts) fill it in; the meter reads it
// at end() or abandon().

/** Four characters a token: the usual rule of thumb for English text and code, erring high for both. */
const CHARS_PER_TOKEN = 4;

export class Tally {
  model: string | null;
  /** Reported counts, in usage.ts's meaning (input includes cache reads and writes); undefined until reported. */
  input: number | undefined;
  output: number | undefined;
  cached: number | undefined;
  cacheWrite: number | undefined;
  /** The answer's final usage was read (Anthropic's message_delta, OpenAI's usage chunk or response.completed, Gemini's latest usageMetadata). */
  final = false;
  /** Content deltas delivered (text, tool arguments, thinking): each is at least one output token. */
  deltas = 0;
  /** Characters of delivered content, and bytes of events too large to read (counted as characters). */
  chars = 0;
  /** An event or body was too large to read, or could not be parsed: its usage, if any, is lost. */
  unreadable = false;
  /** Bytes of the answer delivered (the meter adds each piece's size): an unknown usage's output estimate. */
  bytes = 0;
  readonly #requestBytes: number | undefined;
  /** The output an answer left before its final usage counts at least (request-facts.ts outputFloor); 0 when the body was not read. */
  readonly #outputFloor: number;

  constructor(requestModel: string | null, requestBytes: number | undefined, outputFloor = 0) {
    this.model = requestModel;
    this.#requestBytes = requestBytes;
    this.#outputFloor = outputFloor;
  }

  /**
   * An event, element or body that could not be read went by: its `chars` count as delivered text,
   * and a final usage read before it is final no more (a later report replaces an earlier one, as
   * Gemini's running usage does, and this one may have held it): an answer that ends here is unknown.
   */
  lost(chars: number): void {
    this.unreadable = true;
    this.final = false;
    this.chars += chars;
  }

  /** Counts one content delta of `text` (empty deltas are not output). */
  delta(text: string): void {
    if (text.length === 0) return;
    this.deltas += 1;
    this.chars += text.length;
  }

  /** Counts one content delta of `size` characters, as written (see raw-string.ts). */
  deltaOf(size: number): void {
    if (size === 0) return;
    this.deltas += 1;
    this.chars += size;
  }

  /** Sets the counts an answer reported; undefined leaves a count as it was (take the latest of each). Positional: no object per report. */
  report(input: number | undefined, output: number | undefined, cached: number | undefined, cacheWrite?: number | undefined): void {
    if (input !== undefined) this.input = input;
    if (output !== undefined) this.output = output;
    if (cached !== undefined) this.cached = cached;
    if (cacheWrite !== undefined) this.cacheWrite = cacheWrite;
  }

  setModel(model: unknown): void {
    if (typeof model === 'string' && model !== '') this.model = model;
  }

  /**
   * The answer ended as the upstream meant it to. With its final usage read: `reported`. With some
   * usage but not the final word (a Messages stream that stopped after message_start): counted as
   * partial. With none, or with part of the answer unreadable (OpenAI's stream without
   * include_usage, a body or event too large to read): unknown, the caller flags it.
   */
  ended(): UsageReading {
    if (this.final && this.input !== undefined && this.output !== undefined) return { usage: this.#usage(this.input, this.output), basis: 'reported' };
    if (this.unreadable || (this.input === undefined && this.output === undefined)) return { usage: undefined, basis: 'reported', estimate: this.#estimate() };
    return this.abandoned();
  }

  /**
   * What an answer with no readable usage is counted as under a budget: its bytes as tokens, a
   * token per BYTES_PER_TOKEN bytes, the request's body as input and the delivered answer (its JSON
   * or event framing included: the estimate errs high) as output; never less than what the answer
   * did report or deliver as content.
   */
  #estimate(): ModelUsage {
    const input = Math.max(this.input ?? 0, Math.ceil((this.#requestBytes ?? 0) / BYTES_PER_TOKEN));
    const output = Math.max(this.output ?? 0, this.deltas, Math.ceil(this.chars / CHARS_PER_TOKEN), Math.ceil(this.bytes / BYTES_PER_TOKEN));
    return this.#usage(input, output);
  }

  /**
   * The answer stopped early (the client left, the upstream broke off): what was delivered, never
   * less than what the answer already reported. When the answer had already given its final usage,
   * that is the reading (`reported`): nothing more was to come. Otherwise, as `partial`:
   * - input: as reported so far (Anthropic gives it up front); else an estimate, ceil(request
   *   bytes / 4), when the caller gave the request's size, else 0 (OpenAI and Gemini report input
   *   only at the end: an abandoned stream whose request size nobody gave counts no input);
   * - output: the largest of the output reported so far, the number of content deltas delivered,
   *   ceil(delivered characters / 4), and the request's output floor (its cap, else the vendor's
   *   default: the vendor may go on writing, and bill, after the client left). `floored` false:
   *   the vendor itself stopped it (an error event on a socket), so what was delivered is what it wrote.
   */
  abandoned(floored = true): UsageReading {
    if (this.final && this.input !== undefined && this.output !== undefined) return { usage: this.#usage(this.input, this.output), basis: 'reported' };
    const estimatedInput = this.#requestBytes === undefined ? 0 : Math.ceil(this.#requestBytes / CHARS_PER_TOKEN);
    const input = this.input ?? estimatedInput;
    const output = Math.max(this.output ?? 0, this.deltas, Math.ceil(this.chars / CHARS_PER_TOKEN), floored ? this.#outputFloor : 0);
    return { usage: this.#usage(input, output), basis: 'partial' };
  }

  #usage(input: number, output: number): ModelUsage {
    const usage: ModelUsage = { model: this.model, input_tokens: input, output_tokens: output };
    // Absent means none: a zero is left out, so every vendor's answer looks alike on the audit line.
    if (this.cached !== undefined && this.cached > 0) usage.cached_input_tokens = this.cached;
    if (this.cacheWrite !== undefined && this.cacheWrite > 0) usage.cache_write_tokens = this.cacheWrite;
    return usage;
  }
}

/** A count from a vendor's JSON: a non-negative safe integer, else undefined (a count never read is not a zero). */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
