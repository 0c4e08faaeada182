import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS, serializeEvent } from '../../../src/audit/record.ts';
import type { AuditEvent } from '../../../src/audit/index.ts';
import { CountedUsage, countModelAnswer, ModelExchange, type SpendRecorder } from '../../../src/proxy/stages/model-exchange.ts';
import type { SpendEntry } from '../../../src/spend/core/ledger.ts';
import { ModelNames, OTHER_MODEL } from '../../../src/spend/core/model-name.ts';
import type { UsageReading } from '../../../src/spend/core/usage.ts';

// A metered answer's audit fields are written in the line's sorted order (cost_usd, unpriced,
// usage), so that the audit writer serialises the event as it is (its fast path) rather than
// copying it into order: docs/perf/spend.md measures the difference.

const scope = { agent: null, grant: 'g', end_user: null };

function draftEvent(): AuditEvent {
  const event: Record<string, unknown> = {};
  for (const key of EVENT_FIELDS) event[key] = null;
  Object.assign(event, { ts: new Date(0).toISOString(), decision: 'inject', host: 'api.example.test', status: 200 });
  return event as unknown as AuditEvent;
}

/** `fallback`: as spend-part prices a model with no price under a USD budget (the reading marked, a cost). */
function recorder(price: number | null | 'fallback'): SpendRecorder & { added: SpendEntry[] } {
  const added: SpendEntry[] = [];
  return {
    added,
    costOf: (r: UsageReading) => {
      if (r.usage === undefined) return null;
      if (price !== 'fallback') return price;
      r.price = 'fallback';
      return 0.75;
    },
    modelName: (_agent: string | null, model: string | null) => model,
    add: (e: SpendEntry) => void added.push(e),
    settled: () => undefined,
  };
}

const reading = (model: string): UsageReading => ({ usage: { model, input_tokens: 25, output_tokens: 4 }, basis: 'reported' });

/** The keys after the fixed fields, in the event's own order. */
const extras = (event: AuditEvent) => Object.keys(event).slice(EVENT_FIELDS.length);

describe('CountedUsage.writeTo', () => {
  it('writes cost_usd before usage: the keys are sorted and the line is the event as it is', () => {
    const event = draftEvent();
    const counted = new CountedUsage(null, 'openai');
    counted.add(reading('claude-sonnet-4-5'), scope, recorder(0.000135), new Date(0));
    counted.writeTo(event);
    expect(extras(event)).toEqual(['cost_usd', 'usage']);
    expect(serializeEvent(event)).toBe(JSON.stringify(event));
    expect(event.cost_usd).toBe(0.000135);
    expect(event.usage).toEqual({ model: 'claude-sonnet-4-5', input_tokens: 25, output_tokens: 4 });
  });

  it('cost_usd reserved before secret_source (stage budget) keeps the line in order', () => {
    const event = draftEvent();
    event.cost_usd = undefined;
    event.secret_source = 'store';
    const counted = new CountedUsage(null, 'openai');
    counted.add(reading('claude-sonnet-4-5'), scope, recorder(0.000135), new Date(0));
    counted.writeTo(event);
    expect(extras(event)).toEqual(['cost_usd', 'secret_source', 'usage']);
    expect(serializeEvent(event)).toBe(JSON.stringify(event));
    // Refused or unpriced: the reserved place writes nothing.
    const refused = draftEvent();
    refused.cost_usd = undefined;
    refused.secret_source = 'store';
    expect(serializeEvent(refused)).not.toContain('cost_usd');
  });

  it('flags an unpriced answer between them, still in order', () => {
    const event = draftEvent();
    const counted = new CountedUsage(null, 'openai');
    counted.add(reading('nobody-priced-me'), scope, recorder(null), new Date(0));
    counted.writeTo(event);
    expect(extras(event)).toEqual(['unpriced', 'usage']);
    expect(serializeEvent(event)).toBe(JSON.stringify(event));
    expect(event.cost_usd).toBeUndefined();
  });

  it('with priced and unpriced answers (a socket), all three in order', () => {
    const event = draftEvent();
    const counted = new CountedUsage(null, 'openai');
    counted.add(reading('claude-sonnet-4-5'), scope, recorder(0.5), new Date(0));
    counted.add(reading('nobody-priced-me'), scope, recorder(null), new Date(0));
    counted.writeTo(event);
    expect(extras(event)).toEqual(['cost_usd', 'unpriced', 'usage']);
    expect(event.usage).toMatchObject({ input_tokens: 50, output_tokens: 8 });
  });

  it('an unknown usage: usage alone, flagged unknown, no cost', () => {
    const event = draftEvent();
    const counted = new CountedUsage('m', 'openai');
    counted.add({ usage: undefined, basis: 'reported' }, scope, recorder(1), new Date(0));
    counted.writeTo(event);
    expect(extras(event)).toEqual(['usage']);
    expect(event.usage).toEqual({ model: 'm', unknown: true });
  });
});

describe('countModelAnswer (one answer)', () => {
  const readings: UsageReading[] = [
    reading('claude-sonnet-4-5'),
    { usage: { model: 'claude-sonnet-4-5', input_tokens: 30, output_tokens: 2, cached_input_tokens: 5, cache_write_tokens: 1 }, basis: 'reported' },
    { usage: { model: 'claude-sonnet-4-5', input_tokens: 30, output_tokens: 2, cached_input_tokens: 0, cache_write_tokens: 0 }, basis: 'reported' },
    { usage: { model: null, input_tokens: 7, output_tokens: 0 }, basis: 'partial' },
    { usage: { model: null, input_tokens: 7, output_tokens: 1 }, basis: 'reported' },
    { usage: { model: 'x', input_tokens: 7, output_tokens: 3, cached_input_tokens: 2 }, basis: 'partial' },
    { usage: undefined, basis: 'reported' },
    { usage: { model: 'gpt-4o', input_tokens: 40, output_tokens: 1000 }, basis: 'estimated' },
  ];

  it('writes the line CountedUsage writes for a sum of one, whatever the reading, priced or not, in the same order', () => {
    for (const r of readings)
      for (const price of [0.25, null, 'fallback'] as const)
        for (const requestModel of [null, 'req-model']) {
          const mine = draftEvent();
          const plan = { api: 'anthropic', route: 'anthropic-messages', requestModel } as const;
          const meter = { push() {}, end: () => r, abandon: () => r };
          const spendMine = recorder(price);
          const model = new ModelExchange(plan, scope, undefined);
          model.meter = meter;
          countModelAnswer(model, true, mine, spendMine, new Date(0));
          const theirs = draftEvent();
          const counted = new CountedUsage(requestModel, 'openai');
          const spendTheirs = recorder(price);
          counted.add(r, scope, spendTheirs, new Date(0));
          counted.writeTo(theirs);
          expect(serializeEvent(mine)).toBe(serializeEvent(theirs));
          expect(extras(mine)).toEqual(extras(theirs));
          expect(serializeEvent(mine)).toBe(JSON.stringify(mine));
          expect(spendMine.added).toEqual(spendTheirs.added);
          if (r.usage !== undefined && price === 'fallback') expect(mine).toMatchObject({ cost_usd: 0.75, price: 'fallback', unpriced: true });
          if (r.basis === 'estimated') expect(mine.usage).toMatchObject({ estimated: true, input_tokens: 40, output_tokens: 1000 });
          delete r.price;
        }
  });
});

describe('the model name an answer is counted under', () => {
  const long = `m-${'x'.repeat(8_000)}`;
  const bounded = (names: ModelNames): SpendRecorder & { added: SpendEntry[] } => ({
    ...recorder(0.001),
    modelName: (agent, model, at) => names.name(agent, model, at),
  });

  it('the ledger entry and the audit line carry the bounded name, an unknown answer its request model bounded too', () => {
    const names = new ModelNames(1);
    const spend = bounded(names);
    const plan = { api: 'gemini', route: 'gemini-generate', requestModel: long } as const;
    const answered = new ModelExchange(plan, scope, 100);
    answered.meter = { push: () => undefined, end: () => reading(long), abandon: () => reading(long) };
    const event = draftEvent();
    countModelAnswer(answered, true, event, spend, new Date(0));
    expect(event.usage?.model).toBe(OTHER_MODEL);
    expect(spend.added[0]!.reading.usage?.model).toBe(OTHER_MODEL);
    const unknown = new ModelExchange(plan, scope, 100);
    unknown.meter = { push: () => undefined, end: () => ({ usage: undefined, basis: 'reported' }), abandon: () => ({ usage: undefined, basis: 'reported' }) };
    const line = draftEvent();
    countModelAnswer(unknown, true, line, spend, new Date(0));
    expect(line.usage).toEqual({ model: OTHER_MODEL, unknown: true });
    // Past the distinct cap: `_other`, still priced by its own name.
    const counted = new CountedUsage(null, 'openai');
    counted.add(reading('gpt-4o'), scope, spend, new Date(0));
    counted.add(reading('gpt-4o-mini'), scope, spend, new Date(0));
    const ws = draftEvent();
    counted.writeTo(ws);
    expect(ws.usage?.model).toBe(OTHER_MODEL);
    expect(ws.cost_usd).toBe(0.002);
  });
});
