import type { AuditEvent } from '../../audit/index.ts';
import type { SpendEntry, SpendScope } from '../../spend/core/ledger.ts';
import { type AnswerMeter, type MeterPlan, unansweredReading } from '../../spend/core/meters/index.ts';
import type { RequestFacts } from '../../spend/core/request-facts.ts';
import type { RequestJsonReader } from '../../spend/request/request-json.ts';
import type { ModelApi, UsageReading } from '../../spend/core/usage.ts';

// A request on model traffic (stage budget marks it): its answer's usage is read as it is
// delivered (the answer tap model-meter reads the bytes the agent gets into the meter), and counted
// when the exchange closes (the close stage model-count): in the audit line, the metrics (from the
// line) and the spend ledger.

/**
 * A class with every field set at the start: the fields set later on the request path (meter,
 * sent, answered) then change no object's shape on the request path (a property added later made a new
 * map and grew the object's property store, per answer).
 */
export class ModelExchange {
  readonly plan: MeterPlan;
  readonly scope: SpendScope;
  /** The request body's size, when known: an answer cut short before it names its input has it estimated from this. */
  requestBytes: number | undefined;
  /** Made at the answer's head (the answer tap model-meter); none for an answer not billed (not 2xx). */
  meter: AnswerMeter | undefined = undefined;
  /** The request went up whole (undici's onRequestSent: the request-sent hook model-sent): the upstream had it, and may bill it. */
  sent = false;
  /** The answer's head came (the answer tap model-meter), whatever its status. */
  answered = false;
  /** What the request body says (model, output cap), once read (spend/core/request-facts.ts); undefined: not read. */
  facts: RequestFacts | undefined = undefined;
  /** Without a budget: the body is read as undici sends it (stage model-body makes it; the request-sent hook model-sent feeds it), and facts set once it went up whole. */
  bodyRead: SentBodyReader | undefined = undefined;
  /** Counted when the answer was whole, before its end went to the agent (countAnswerEnd): the close writes it on the line. */
  counted: Counted | undefined = undefined;

  constructor(plan: MeterPlan, scope: SpendScope, requestBytes: number | undefined) {
    this.plan = plan;
    this.scope = scope;
    this.requestBytes = requestBytes;
  }
}

/**
 * A metered request's body read as it is sent (no budget: nothing to refuse, so nothing to hold
 * back): fed the pieces undici writes upstream, at no cost of a stream of its own per request.
 */
export class SentBodyReader {
  readonly #reader: RequestJsonReader;

  constructor(reader: RequestJsonReader) {
    this.#reader = reader;
  }

  push(chunk: Buffer): void {
    if (this.#reader.refused === undefined) this.#reader.push(chunk);
  }

  /** The body went up whole: its facts are the exchange's, and a second send (a replay) is not read again. */
  finish(model: ModelExchange): void {
    this.#reader.end();
    model.facts = this.#reader.facts();
    model.bodyRead = undefined;
  }
}

/** What keyway's spend part offers the proxy (spend/ledger/ledger.ts builds it; pricing from the live config). */
export interface SpendRecorder {
  /**
   * USD for `reading`'s usage at the configured prices; null when the model has no price or the
   * usage is unknown. Where a budget applies to `scope`, unknown is not free (app/spend-part.ts):
   * an unknown usage becomes its estimate (basis `estimated`), and under a budget in dollars a model
   * with no price is priced at `api`'s fallback (the reading's `price` says so).
   */
  costOf(reading: UsageReading, api: ModelApi, scope: SpendScope): number | null;
  /** The name `model` is counted under for `agent` (spend/core/model-name.ts): its own when admitted, else `_other`; null stays null. */
  modelName(agent: string | null, model: string | null, at: Date): string | null;
  add(entry: SpendEntry): void;
  /** Undefined once every add so far survives a crash; else when they do (spend/core/ledger.ts SpendLedgerApi.settled). */
  settled(): Promise<void> | undefined;
}

/** One answer's count, as it goes on its audit line. */
interface Counted {
  readonly reading: UsageReading;
  readonly cost: number | null;
  readonly model: string | null;
}

/**
 * Puts the reading's model (the request's when the answer named none) under its bounded name, the
 * one the ledger, the audit line and the metrics then carry. Priced before this (costOf takes the
 * name as the vendor gave it, when it has a model name's shape): a name past the distinct cap still
 * costs what it costs. The usage is the meter's own object, made for this answer: renamed in place.
 */
function nameModel(reading: UsageReading, requestModel: string | null, agent: string | null, spend: SpendRecorder, at: Date): string | null {
  const usage = reading.usage;
  // An unknown usage's model is its estimate's: the one the answer named, though it said nothing of its usage.
  const named = spend.modelName(agent, usage?.model ?? reading.estimate?.model ?? requestModel, at);
  if (usage !== undefined) usage.model = named;
  return named;
}

/**
 * The exchange closed: its meter's reading goes on the audit line and into the ledger. `whole`:
 * the agent got the whole answer (else what was delivered counts: no free tokens by hanging up).
 */
export function countModelAnswer(model: ModelExchange, whole: boolean, event: AuditEvent, spend: SpendRecorder, now: Date): void {
  const counted = model.counted;
  if (counted !== undefined) {
    // Counted whole at the answer's end (even if the agent then left before all of it arrived: at
    // least what it got, and what the vendor billed).
    model.counted = undefined;
    return writeOne(event, counted.reading, counted.cost, counted.model);
  }
  const meter = model.meter;
  let reading: UsageReading;
  if (meter !== undefined) {
    model.meter = undefined; // counted once
    reading = whole ? meter.end() : meter.abandon();
  } else if (model.sent && !model.answered && !whole) {
    // The agent left after the request went up and before the answer's head: the model may have
    // read the prompt (and be writing an answer nobody gets, billed all the same). Counted as the
    // abandoned-stream path counts an answer that never named its input: the request's estimate,
    // and its output floor (docs/spend.md, "What a request costs at least"), partial.
    model.sent = false; // counted once
    reading = unansweredReading(model.plan, model.requestBytes, model.facts);
  } else return;
  const cost = spend.costOf(reading, model.plan.api, model.scope);
  const named = nameModel(reading, requestModelOf(model), model.scope.agent, spend, now);
  spend.add(entryOf(model.scope, now, reading, cost));
  writeOne(event, reading, cost, named);
}

/**
 * The answer is whole (its last byte read from the upstream and metered) and its end not yet given
 * to the agent: counted now, so that the agent never holds a whole answer a crash could leave
 * uncounted. Returns what the end waits for (spend.settled()); undefined when there is nothing to
 * count (no meter: not a billed answer) or the count is durable already.
 */
export function countAnswerEnd(model: ModelExchange, spend: SpendRecorder, now: Date): Promise<void> | undefined {
  const meter = model.meter;
  if (meter === undefined) return undefined;
  model.meter = undefined; // counted once
  const reading = meter.end();
  const cost = spend.costOf(reading, model.plan.api, model.scope);
  const named = nameModel(reading, requestModelOf(model), model.scope.agent, spend, now);
  spend.add(entryOf(model.scope, now, reading, cost));
  model.counted = { reading, cost, model: named };
  return spend.settled();
}

/** The model the request names, when its answer names none: its path's (Gemini, Vertex, an Azure deployment), else its body's. */
function requestModelOf(model: ModelExchange): string | null {
  return model.plan.requestModel ?? model.facts?.model ?? null;
}

/** The ledger's entry for one reading: a literal of one shape (a spread of the scope measured ~1.5x its cost). */
function entryOf(scope: SpendScope, at: Date, reading: UsageReading, cost: number | null): SpendEntry {
  return { agent: scope.agent, grant: scope.grant, end_user: scope.end_user, ancestors: scope.ancestors, at, reading, cost_usd: cost };
}

/**
 * One answer's fields on its audit line, as CountedUsage.writeTo writes a sum of one (the same
 * text, in the same sorted order): without the sum's object, and with the meter's own usage object
 * as the line's `usage` when it already reads as the line would (reported, its model named, no zero
 * count): two objects and three spreads less per metered answer.
 */
function writeOne(event: AuditEvent, reading: UsageReading, cost: number | null, model: string | null): void {
  const usage = reading.usage;
  if (usage === undefined) {
    event.usage = { model, unknown: true };
    return;
  }
  if (cost !== null) event.cost_usd = cost;
  // Sorted order: cost_usd, price, unpriced, usage. A fallback price is a model with no price of its own.
  if (reading.price === 'fallback') event.price = 'fallback';
  if (cost === null || reading.price === 'fallback') event.unpriced = true;
  const cached = usage.cached_input_tokens ?? 0;
  const written = usage.cache_write_tokens ?? 0;
  const asIs =
    reading.basis === 'reported' &&
    model === usage.model &&
    (usage.cached_input_tokens === undefined || cached > 0) &&
    (usage.cache_write_tokens === undefined || written > 0);
  if (asIs) {
    event.usage = usage;
    return;
  }
  event.usage = {
    model,
    input_tokens: usage.input_tokens,
    output_tokens: usage.output_tokens,
    ...(cached > 0 ? { cached_input_tokens: cached } : {}),
    ...(written > 0 ? { cache_write_tokens: written } : {}),
    ...(reading.basis === 'estimated' ? { estimated: true as const } : {}),
    ...(reading.basis === 'partial' ? { partial: true as const } : {}),
  };
}

/**
 * The usage of one exchange's answers, summed for its audit line: one answer's, or every response
 * a WebSocket carried (each added to the ledger as it completes, so budgets see it at once).
 */
export class CountedUsage {
  readonly #requestModel: string | null;
  readonly #api: ModelApi;
  #model: string | null = null;
  #input = 0;
  #output = 0;
  #cached = 0;
  #written = 0;
  #cost = 0;
  #readings = 0;
  #known = 0;
  #priced = 0;
  #partial = false;
  #estimated = false;
  /** Answers priced at the fallback (their model had no price of its own). */
  #fallback = 0;

  constructor(requestModel: string | null, api: ModelApi) {
    this.#requestModel = requestModel;
    this.#api = api;
  }

  /** Prices `reading`, adds it to the ledger and to this sum. */
  add(reading: UsageReading, scope: SpendScope, spend: SpendRecorder, now: Date): void {
    const cost = spend.costOf(reading, this.#api, scope);
    const named = nameModel(reading, this.#requestModel, scope.agent, spend, now);
    spend.add(entryOf(scope, now, reading, cost));
    this.#readings++;
    const usage = reading.usage;
    if (usage === undefined) {
      this.#model ??= named;
      return;
    }
    this.#known++;
    this.#model = usage.model ?? this.#model;
    this.#input += usage.input_tokens;
    this.#output += usage.output_tokens;
    this.#cached += usage.cached_input_tokens ?? 0;
    this.#written += usage.cache_write_tokens ?? 0;
    if (reading.basis === 'partial') this.#partial = true;
    if (reading.basis === 'estimated') this.#estimated = true;
    if (reading.price === 'fallback') this.#fallback++;
    if (cost !== null) {
      this.#cost += cost;
      this.#priced++;
    }
  }

  writeTo(event: AuditEvent): void {
    if (this.#readings === 0) return;
    // Bounded already (nameModel): the request's model stands in for an answer that named none.
    const model = this.#model;
    if (this.#known === 0) {
      event.usage = { model, unknown: true };
      return;
    }
    // The priced answers' cost (what the ledger adds), and a flag when some answer had no price.
    // Set in the line's (sorted) order, cost_usd, unpriced, usage: the audit writer then serialises
    // the event as it is, V8's fast path, instead of copying it into order (audit/record.ts;
    // docs/perf/spend.md: ~3 µs a metered request).
    if (this.#priced > 0) event.cost_usd = this.#cost;
    if (this.#fallback > 0) event.price = 'fallback';
    if (this.#priced < this.#known || this.#fallback > 0) event.unpriced = true;
    event.usage = {
      model,
      input_tokens: this.#input,
      output_tokens: this.#output,
      ...(this.#cached > 0 ? { cached_input_tokens: this.#cached } : {}),
      ...(this.#written > 0 ? { cache_write_tokens: this.#written } : {}),
      ...(this.#estimated ? { estimated: true as const } : {}),
      ...(this.#partial ? { partial: true as const } : {}),
    };
  }
}
