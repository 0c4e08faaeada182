// keyway_model_tokens_total and keyway_spend_usd_total: fed from the audit event's usage and
// cost_usd where every request is counted, so they equal the audit lines' totals; model labels
// bounded (a name an upstream chose); under proxy.workers the primary's aggregation sums them.
import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import { KeywayMetrics, NONE_LABEL, OVERFLOW_LABEL } from '../../src/observability/metrics/index.ts';
import { ModelLabels } from '../../src/observability/metrics/labels.ts';
import { injectEvent } from '../helpers/audit-events.ts';
import { parseMetrics, seriesKey } from '../helpers/metrics-text.ts';

const TOKENS = 'keyway_model_tokens_total';
const USD = 'keyway_spend_usd_total';

function modelEvent(i: number, fields: Partial<AuditEvent>): AuditEvent {
  return { ...injectEvent(i), agent: 'ci-bot', grant: 'anthropic', ...fields };
}

async function scrape(metrics: KeywayMetrics) {
  return parseMetrics((await metrics.scrape()).text);
}

describe('model usage metrics', () => {
  it('equal the sums of the audit events’ usage and cost_usd, per grant, agent, model and kind', async () => {
    const metrics = new KeywayMetrics();
    const events: AuditEvent[] = [];
    for (let i = 0; i < 1000; i++) {
      events.push(
        modelEvent(i, {
          usage: { model: 'claude-sonnet-4-5', input_tokens: 100 + i, output_tokens: 20, cached_input_tokens: 30, cache_write_tokens: i % 2 },
          cost_usd: 0.000123 * i + 0.1,
        }),
      );
    }
    events.push(modelEvent(1000, { grant: 'gateway', usage: { model: 'house-model', input_tokens: 7, output_tokens: 3 }, unpriced: true }));
    events.push(modelEvent(1001, { grant: 'gateway', usage: { model: null, unknown: true } }));
    events.push(
      modelEvent(1002, { grant: 'openai', agent: null, usage: { model: 'gpt-4.1', input_tokens: 5, output_tokens: 1, partial: true }, cost_usd: 0.5 }),
    );
    events.push(injectEvent(1003)); // not model traffic: adds nothing
    for (const e of events) metrics.request(e, undefined);
    const s = await scrape(metrics);
    const tokens = (grant: string, agent: string, model: string, kind: string) => s.get(seriesKey(TOKENS, { grant, agent, model, kind }));
    expect(tokens('anthropic', 'ci-bot', 'claude-sonnet-4-5', 'input')).toBe(
      events.slice(0, 1000).reduce((n, e) => n + (e.usage as { input_tokens: number }).input_tokens, 0),
    );
    expect(tokens('anthropic', 'ci-bot', 'claude-sonnet-4-5', 'output')).toBe(20_000);
    expect(tokens('anthropic', 'ci-bot', 'claude-sonnet-4-5', 'cached_input')).toBe(30_000);
    expect(tokens('anthropic', 'ci-bot', 'claude-sonnet-4-5', 'cache_write')).toBe(500);
    expect(tokens('gateway', 'ci-bot', 'house-model', 'input')).toBe(7);
    expect(tokens('openai', NONE_LABEL, 'gpt-4.1', 'output')).toBe(1);
    // An answer that reported nothing adds no token series; an unpriced one adds no dollars.
    expect([...s.keys()].filter((k) => k.startsWith(TOKENS) && k.includes('grant="gateway"') && !k.includes('house-model'))).toEqual([]);
    expect(s.get(seriesKey(USD, { grant: 'gateway', agent: 'ci-bot' }))).toBeUndefined();
    const cost = events.slice(0, 1000).reduce((n, e) => n + e.cost_usd!, 0);
    expect(Math.abs(s.get(seriesKey(USD, { grant: 'anthropic', agent: 'ci-bot' }))! - cost)).toBeLessThan(1e-6);
    expect(s.get(seriesKey(USD, { grant: 'openai', agent: NONE_LABEL }))).toBe(0.5);
  });

  it('under proxy.workers, the primary’s aggregation sums the workers’ counts', async () => {
    const workers = [new KeywayMetrics(), new KeywayMetrics()];
    for (const [w, metrics] of workers.entries())
      for (let i = 0; i < 10; i++)
        metrics.request(modelEvent(i, { usage: { model: 'm-1', input_tokens: 10 + w, output_tokens: 1 }, cost_usd: 0.01 }), undefined);
    // As app/workers/primary.ts does it.
    const all = await Promise.all(workers.map(async (m) => (await m.registry()).getMetricsAsJSON()));
    const registry = AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]);
    const s = parseMetrics(await registry.metrics());
    expect(s.get(seriesKey(TOKENS, { grant: 'anthropic', agent: 'ci-bot', model: 'm-1', kind: 'input' }))).toBe(210);
    expect(s.get(seriesKey(USD, { grant: 'anthropic', agent: 'ci-bot' }))).toBeCloseTo(0.2, 9);
  });

  it('a model label admits only a model name’s shape, and a bounded number of them', async () => {
    const labels = new ModelLabels(3);
    expect(['claude-sonnet-4-5', 'models/gemini-2.5-pro', 'org/model:tag@v1'].map((m) => labels.label(m))).toEqual([
      'claude-sonnet-4-5',
      'models/gemini-2.5-pro',
      'org/model:tag@v1',
    ]);
    expect(labels.label('gpt-4.1')).toBe(OVERFLOW_LABEL); // past the bound
    expect(labels.label('claude-sonnet-4-5')).toBe('claude-sonnet-4-5');
    expect(labels.label(null)).toBe(NONE_LABEL);
    // Never listed, whatever the bound: what no model name looks like.
    const fresh = new ModelLabels();
    for (const odd of ['', 'a"b', 'x\ny', 'has space', '-leading', 'é', 'x'.repeat(129), '{job="evil"}'])
      expect(fresh.label(odd), JSON.stringify(odd)).toBe(OVERFLOW_LABEL);
    const metrics = new KeywayMetrics();
    metrics.request(modelEvent(0, { usage: { model: 'a"b\nc', input_tokens: 1, output_tokens: 1 } }), undefined);
    expect((await scrape(metrics)).get(seriesKey(TOKENS, { grant: 'anthropic', agent: 'ci-bot', model: OVERFLOW_LABEL, kind: 'input' }))).toBe(1);
  });
});
