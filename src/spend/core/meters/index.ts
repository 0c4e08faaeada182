import { outputFloor, type RequestFacts } from '../request-facts.ts';
import type { UsageReading } from '../usage.ts';
import { AnthropicReader } from './anthropic.ts';
import { JsonBody, JsonValues, type JsonValuesSink } from './json.ts';
import { usageAtEnd } from './json-tail.ts';
import { GeminiReader } from './gemini.ts';
import { JsonMembers, type WantedMembers } from './json-members.ts';
import { openaiChatReader } from './openai-chat.ts';
import { OpenAIResponsesReader } from './openai-responses.ts';
import type { FormatReader } from './reader.ts';
import type { MeterPlan } from './routes.ts';
import { SseReader, type SseSink } from './sse.ts';
import { Tally } from './tally.ts';

// Answer meters (issue 63): the proxy feeds one the answer's decoded body as it passes to the
// client, then asks what the model used. A stream (text/event-stream) is read event by event and
// never held; a whole JSON answer is held and parsed at its end up to 64 KiB, and past that scanned
// as it passes for the top-level members its reader names (usage, model: json-members.ts); Gemini's JSON array stream (and its
// whole answer, one element) is read element by element, each held within a bound (8 MiB). An SSE
// event or an array element past that bound is scanned as it passes for the members its reader
// names in `large` (the usage, nested where the format nests it), so an answer of any size has its
// usage read and none is held; one that cannot be read so is unknown (Tally.lost).
// One class per way of reading, with fields instead of closures: a meter is made per metered
// answer, and its objects were a measured share of metering's cost (docs/perf/spend.md). Nothing here does I/O or throws on what an upstream
// sends: a body it cannot read gives an unknown usage, which the caller flags.

export { modelRoute, socketRoute, type MeterPlan, type MeterRoute, type ModelApiHint, type ModelRoute } from './routes.ts';
export { wsMeter, type WsMeter } from './websocket.ts';

export interface AnswerMeter {
  /** The next piece of the decoded body, exactly as delivered to the client. */
  push(chunk: Buffer): void;
  /** The body ended as the upstream meant: `reported` usage, else unknown (or partial when it stopped short of its final usage). */
  end(): UsageReading;
  /** The body stopped early (the client left, the upstream broke off): what was delivered, as `partial`. */
  abandon(): UsageReading;
}

export interface MeterOptions {
  /** The request body's size in bytes: the input is estimated from it (bytes / 4) when an answer stops before saying. */
  requestBytes?: number | undefined;
  /** What the request body said (stage model-body): its model stands in for one the answer never names; its output floor counts when it is left early. */
  facts?: RequestFacts | undefined;
}

/** A meter for one answer on a metered route; undefined for an answer that is not 2xx (not billed). */
export function answerMeter(plan: MeterPlan, status: number, contentType: string | undefined, options: MeterOptions = {}): AnswerMeter | undefined {
  if (status < 200 || status > 299) return undefined;
  const tally = tallyFor(plan, options.requestBytes, options.facts);
  const reader = readerFor(plan, tally);
  if (mediaType(contentType) === 'text/event-stream') return new SseMeter(reader, tally);
  if (plan.api === 'gemini') return new JsonArrayMeter(reader, tally);
  // Any other type is read as JSON: a body that does not parse gives an unknown usage.
  return reader.members === undefined ? new WholeJsonMeter(reader, tally) : new JsonMeter(reader, tally, reader.members);
}

/**
 * An answer that never came to the agent (it left after the request went up, before the head):
 * the request's input estimate (bytes / 4, none without its size) and its output floor (the
 * request's cap, else the vendor's default; none when its body was not read), as `partial`,
 * under the model the path or the body names.
 */
export function unansweredReading(plan: MeterPlan, requestBytes: number | undefined, facts?: RequestFacts): UsageReading {
  return tallyFor(plan, requestBytes, facts).abandoned();
}

/** A tally for one answer: the model the path names, else the body's; the output floor when the body was read. */
function tallyFor(plan: MeterPlan, requestBytes: number | undefined, facts: RequestFacts | undefined): Tally {
  if (facts === undefined) return new Tally(plan.requestModel, requestBytes);
  return new Tally(plan.requestModel ?? facts.model, requestBytes, outputFloor(plan, facts));
}

export function readerFor(plan: MeterPlan, tally: Tally): FormatReader {
  switch (plan.route) {
    case 'anthropic-messages':
      return new AnthropicReader(tally);
    case 'openai-chat':
    case 'openai-completions':
      return openaiChatReader(tally, false);
    case 'openai-embeddings':
      return openaiChatReader(tally, true);
    case 'openai-responses':
      return new OpenAIResponsesReader(tally);
    case 'gemini-generate':
      return new GeminiReader(tally, false);
    case 'gemini-code-assist':
      return new GeminiReader(tally, true);
  }
}

function mediaType(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * What every meter shares: it ends once (a second end() or abandon() gives the first reading, and
 * pieces after it are ignored).
 */
abstract class Meter implements AnswerMeter {
  protected readonly reader: FormatReader;
  protected readonly tally: Tally;
  #done: UsageReading | undefined;

  constructor(reader: FormatReader, tally: Tally) {
    this.reader = reader;
    this.tally = tally;
  }

  push(chunk: Buffer): void {
    if (this.#done !== undefined) return;
    // Its size (one add a piece): what an answer that says nothing of its usage is counted as under a budget.
    this.tally.bytes += chunk.length;
    this.take(chunk);
  }

  end(): UsageReading {
    this.#done ??= this.ended();
    return this.#done;
  }

  abandon(): UsageReading {
    this.#done ??= this.abandoned();
    return this.#done;
  }

  protected abstract take(chunk: Buffer): void;
  protected abstract ended(): UsageReading;
  protected abstract abandoned(): UsageReading;
}

/** An event stream: read event by event (the meter is the SSE reader's sink). */
class SseMeter extends Meter implements SseSink {
  readonly #sse: SseReader;

  constructor(reader: FormatReader, tally: Tally) {
    super(reader, tally);
    this.#sse = new SseReader(this, undefined, reader.large);
  }

  protected take(chunk: Buffer): void {
    this.#sse.push(chunk);
  }

  protected ended(): UsageReading {
    this.#sse.end();
    return this.tally.ended();
  }

  // The event in progress is not read: it may be cut anywhere.
  protected abandoned(): UsageReading {
    return this.tally.abandoned();
  }

  event(name: string | undefined, data: string): void {
    const reader = this.reader;
    if (data === '[DONE]' || !reader.wants(name) || reader.quick?.(name, data) === true) return;
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      // Not JSON: whatever it carried reached the client and is counted as delivered text.
      return this.tally.lost(data.length);
    }
    reader.event(name, value);
  }

  skipped(bytes: number): void {
    this.tally.lost(bytes);
  }

  // Its content (a delta of that size, an image) is not read: its size counts as delivered text,
  // which only an answer cut short before its final usage uses.
  large(name: string | undefined, members: Record<string, unknown>, size: number): void {
    if (!this.reader.wants(name)) return;
    this.tally.chars += size;
    this.reader.event(name, members);
  }
}

/**
 * A whole JSON answer. A small one (most: a few hundred bytes, often one piece) is held and parsed
 * at its end, JSON.parse being native and the quickest read (a byte scan in JS cost twice as much
 * per answer: bench/meters-ab.ts). Past SMALL_JSON_BYTES, what was held is scanned and let go, and
 * the rest is scanned as it passes for the top-level members its reader names (json-members.ts):
 * at most SMALL_JSON_BYTES is ever held, not the answer (up to 8 MiB before).
 */
class JsonMeter extends Meter {
  readonly #wanted: WantedMembers;
  /** The small answer so far: its first piece, and any after it (most answers come in one: no array made). */
  #first: Buffer | undefined = undefined;
  #more: Buffer[] | undefined = undefined;
  #bytes = 0;
  /** Set once the answer outgrew SMALL_JSON_BYTES. */
  #members: JsonMembers | undefined;

  constructor(reader: FormatReader, tally: Tally, wanted: WantedMembers) {
    super(reader, tally);
    this.#wanted = wanted;
  }

  /** Bytes of the answer the meter holds: the small answer so far, or a member cut by a piece's end. */
  get held(): number {
    return this.#members === undefined ? this.#bytes : this.#members.held;
  }

  protected take(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#members !== undefined) return this.#members.push(chunk);
    if (this.#bytes <= SMALL_JSON_BYTES) {
      if (this.#first === undefined) this.#first = chunk;
      else if (this.#more === undefined) this.#more = [chunk];
      else this.#more.push(chunk);
      return;
    }
    const members = new JsonMembers(this.#wanted);
    for (const piece of this.#pieces()) members.push(piece);
    members.push(chunk);
    this.#first = undefined;
    this.#more = undefined;
    this.#members = members;
  }

  #pieces(): Buffer[] {
    if (this.#first === undefined) return [];
    return this.#more === undefined ? [this.#first] : [this.#first, ...this.#more];
  }

  protected ended(): UsageReading {
    this.#read();
    return this.tally.ended();
  }

  protected abandoned(): UsageReading {
    // A whole answer cut short rarely parses; when it does (the client left after the last byte), its usage counts.
    this.#read();
    // The model had produced all of it before the first byte was sent: what reached the client is
    // counted as output text (its JSON around the text included: the estimate errs high).
    if (!this.tally.final && this.reader.outputless !== true) this.tally.chars += this.#bytes;
    return this.tally.abandoned();
  }

  #read(): void {
    const value = this.#members === undefined ? this.#parse() : this.#members.members();
    if (value === undefined) this.tally.unreadable = true;
    else this.reader.body(value);
  }

  #parse(): unknown {
    const first = this.#first;
    if (first === undefined || this.#bytes === 0) return undefined;
    try {
      // A small answer comes in one piece: read it where it is, without a copy.
      return JSON.parse((this.#more === undefined ? first : Buffer.concat(this.#pieces(), this.#bytes)).toString('utf8'));
    } catch {
      return undefined;
    }
  }
}

/** A whole JSON answer up to this size is held and parsed at its end; a larger one is scanned as it passes. */
export const SMALL_JSON_BYTES = 64 * 1024;

/** A whole JSON answer for a reader that names no members: collected within the bound and parsed at the end. */
class WholeJsonMeter extends Meter {
  readonly #body = new JsonBody();

  protected take(chunk: Buffer): void {
    this.#body.push(chunk);
  }

  protected ended(): UsageReading {
    this.#read();
    return this.tally.ended();
  }

  protected abandoned(): UsageReading {
    this.#read();
    if (!this.tally.final && this.reader.outputless !== true) this.tally.chars += this.#body.bytes;
    return this.tally.abandoned();
  }

  #read(): void {
    const body = this.#body;
    const value = body.parse() ?? (body.overflowed ? usageAtEnd(body.tail().toString('utf8')) : undefined);
    if (value === undefined) this.tally.unreadable = true;
    else this.reader.body(value);
  }
}

/** Gemini's JSON: an array of responses streamed (or one object), read element by element. */
class JsonArrayMeter extends Meter implements JsonValuesSink {
  readonly #values: JsonValues;

  constructor(reader: FormatReader, tally: Tally) {
    super(reader, tally);
    this.#values = new JsonValues(this, undefined, reader.large);
  }

  protected take(chunk: Buffer): void {
    this.#values.push(chunk);
  }

  protected ended(): UsageReading {
    return this.tally.ended();
  }

  protected abandoned(): UsageReading {
    this.tally.chars += this.#values.openBytes;
    return this.tally.abandoned();
  }

  value(value: unknown): void {
    if (value === undefined) this.tally.lost(0);
    else this.reader.body(value);
  }

  skipped(bytes: number): void {
    this.tally.lost(bytes);
  }

  // As SseMeter's: its content is not read, its size counts as delivered text.
  large(members: Record<string, unknown>, bytes: number): void {
    this.tally.chars += bytes;
    this.reader.body(members);
  }
}
