// What an answer costs where unknown is not free (app/spend-part.ts costOf): without a budget, an
// unpriced model and a usage-less answer stay flagged and free, as before; under any budget a
// usage-less answer is counted at its estimate; under a dollar budget a model with no price costs
// the fallback (the user's "*" entry, else the vendor's highest shipped price).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { spendPart } from '../../../src/app/spend-part.ts';
import type { Config } from '../../../src/config/index.ts';
import type { BudgetConfig, ModelPrice } from '../../../src/config/spend.ts';
import { NO_BUDGET } from '../../../src/spend/ledger/counts.ts';
import { VENDOR_CEILINGS } from '../../../src/spend/core/pricing.ts';
import type { UsageReading } from '../../../src/spend/core/usage.ts';

const bot = { agent: 'bot', grant: 'openai', end_user: null };
const other = { agent: 'other', grant: 'openai', end_user: null };
const USD: BudgetConfig = { name: 'budgets[0]', agent: 'bot', limit: { usd: 1 }, per: 'day', over: 'refuse' };
const TOKENS: BudgetConfig = { name: 'budgets[0]', agent: 'bot', limit: { tokens: 1000 }, per: 'day', over: 'refuse' };

function part(budgets: BudgetConfig[], pricing: Record<string, ModelPrice> = {}) {
  const config = { pricing, budgets } as unknown as Config;
  return spendPart({
    config: () => config,
    ledger: { add: () => undefined, check: () => NO_BUDGET, flush: async () => undefined, close: async () => undefined, settled: () => undefined },
    notify: () => undefined,
    logger: pino({ level: 'silent' }),
  });
}

const made = (model: string | null): UsageReading => ({ usage: { model, input_tokens: 1000, output_tokens: 1000 }, basis: 'reported' });
const silent = (): UsageReading => ({ usage: undefined, basis: 'reported', estimate: { model: 'gpt-4o', input_tokens: 100, output_tokens: 2000 } });
const at = (p: ModelPrice) => (1000 * p.input_per_mtok + 1000 * p.output_per_mtok) / 1e6;

describe('spendPart costOf: unknown is not free under a budget', () => {
  it('without a budget: an unpriced model has no cost and no mark, a usage-less answer stays unknown', () => {
    const spend = part([USD]);
    const r = made('gpt-made-up');
    expect(spend.costOf(r, 'openai', other)).toBeNull();
    expect(r.price).toBeUndefined();
    const s = silent();
    expect(spend.costOf(s, 'openai', other)).toBeNull();
    expect(s).toMatchObject({ usage: undefined, basis: 'reported' });
  });

  it('under a dollar budget: an unpriced (or unnamed) model costs the vendor fallback, marked; a priced one its own price', () => {
    const spend = part([USD]);
    for (const model of ['gpt-made-up', null, `x${'y'.repeat(500)}`]) {
      const r = made(model);
      expect(spend.costOf(r, 'openai', bot)).toBeCloseTo(at(VENDOR_CEILINGS.openai), 12);
      expect(r.price).toBe('fallback');
    }
    const anthropic = made('claude-made-up');
    expect(spend.costOf(anthropic, 'anthropic', bot)).toBeCloseTo(at(VENDOR_CEILINGS.anthropic), 12);
    const priced = made('gpt-4');
    expect(spend.costOf(priced, 'openai', bot)).toBeCloseTo((1000 * 30 + 1000 * 60) / 1e6, 12);
    expect(priced.price).toBeUndefined();
  });

  it('the user\'s "*" entry is the fallback where it is the only price (an answer that names no model)', () => {
    const star = { input_per_mtok: 1, output_per_mtok: 2 };
    const spend = part([USD], { '*': star });
    const r = made(null);
    expect(spend.costOf(r, 'openai', bot)).toBeCloseTo(at(star), 12);
    expect(r.price).toBe('fallback');
    // A named model is priced by "*" as its own price: not a fallback.
    const named = made('gpt-made-up');
    expect(spend.costOf(named, 'openai', bot)).toBeCloseTo(at(star), 12);
    expect(named.price).toBeUndefined();
  });

  it('under a token budget: a usage-less answer becomes its estimate, priced at its model; an unpriced model stays without cost', () => {
    const spend = part([TOKENS]);
    const s = silent();
    expect(spend.costOf(s, 'openai', bot)).toBeCloseTo((100 * 2.5 + 2000 * 10) / 1e6, 12);
    expect(s).toEqual({ usage: { model: 'gpt-4o', input_tokens: 100, output_tokens: 2000 }, basis: 'estimated', estimate: undefined });
    const r = made('gpt-made-up');
    expect(spend.costOf(r, 'openai', bot)).toBeNull();
    expect(r.price).toBeUndefined();
  });
});
