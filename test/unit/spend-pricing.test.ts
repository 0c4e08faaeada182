// Prices and costs (issue 63): which entry prices a model (the user's table before the shipped one;
// a full name, then the most literal glob, then the first listed), the cost of each vendor's usage
// shape, the shipped table's globs against real model names, and sums that stay exact to 1e-6 USD.
import { describe, expect, it } from 'vitest';
import type { ModelPrice } from '../../src/config/spend.ts';
import { DEFAULT_PRICES, PRICE_ROWS, PRICES_AS_OF } from '../../src/spend/core/default-prices.ts';
import { costOf, fallbackPrice, priceFor, priceMatch, VENDOR_CEILINGS } from '../../src/spend/core/pricing.ts';
import type { ModelUsage } from '../../src/spend/core/usage.ts';

const price = (input: number, output: number, extra: Partial<ModelPrice> = {}): ModelPrice => ({ input_per_mtok: input, output_per_mtok: output, ...extra });

describe('priceFor', () => {
  it("takes the user's table before the defaults, even a user's glob over a default's full name", () => {
    const mine = { 'gpt-4o*': price(1, 2) };
    expect(priceFor('gpt-4o', mine)).toEqual(price(1, 2));
    expect(priceMatch('gpt-4o', mine)).toMatchObject({ glob: 'gpt-4o*', from: 'config' });
    // Not in the user's table: the default.
    expect(priceMatch('gpt-4.1', mine)).toMatchObject({ glob: 'gpt-4.1', from: 'default', price: { input_per_mtok: 2, output_per_mtok: 8 } });
    expect(priceFor('gpt-4.1', undefined)).toEqual(DEFAULT_PRICES['gpt-4.1']);
  });

  it('within one table: a full name over any glob, then more literal characters, then the first listed', () => {
    const table = {
      '*': price(9, 9),
      'claude-*': price(8, 8),
      'claude-sonnet-4*': price(7, 7),
      'claude-sonnet-4-5*': price(6, 6),
      'claude-sonnet-4-5': price(5, 5),
      'claude-sonnet-?-5*': price(4, 4),
    };
    expect(priceMatch('claude-sonnet-4-5', table)?.glob).toBe('claude-sonnet-4-5');
    expect(priceMatch('claude-sonnet-4-5-20250929', table)?.glob).toBe('claude-sonnet-4-5*');
    expect(priceMatch('claude-sonnet-4-0', table)?.glob).toBe('claude-sonnet-4*');
    expect(priceMatch('claude-haiku-4-5', table)?.glob).toBe('claude-*');
    expect(priceMatch('llama-3', table)?.glob).toBe('*');
    // `?` is not literal: claude-sonnet-?-5* has 16 literals, claude-sonnet-4-5* 17.
    expect(priceMatch('claude-sonnet-9-5-x', table)?.glob).toBe('claude-sonnet-?-5*');
    // A tie: the first listed, whichever way round they are written.
    expect(priceMatch('ab', { 'a*': price(1, 1), '*b': price(2, 2) })?.glob).toBe('a*');
    expect(priceMatch('ab', { '*b': price(2, 2), 'a*': price(1, 1) })?.glob).toBe('*b');
  });

  it('matches names case-insensitively, and a glob character only where it is one', () => {
    expect(priceFor('GPT-4o', undefined)).toEqual(DEFAULT_PRICES['gpt-4o']);
    // `.` is literal: gpt-4.1 does not price gpt-401.
    expect(priceFor('gpt-401', undefined)).toBeUndefined();
    expect(priceFor('x+y', { 'x+y': price(1, 1) })).toEqual(price(1, 1));
    expect(priceFor('xxy', { 'x+y': price(1, 1) })).toBeUndefined();
  });

  it('gives no price to a model nobody named, an empty name, or one no entry matches (never zero)', () => {
    expect(priceFor(null, { '*': price(1, 1) })).toBeUndefined();
    expect(priceFor('', { '*': price(1, 1) })).toBeUndefined();
    expect(priceFor('my-finetune', undefined)).toBeUndefined();
    expect(priceFor('my-finetune', {})).toBeUndefined();
    // A later model of a known family is not priced at its elder's rate.
    for (const future of ['gpt-5.9', 'claude-opus-4-9', 'gemini-2.5-flash-preview-tts', 'gemini-2.5-pro-preview-tts', 'o3-ultra'])
      expect(priceFor(future, undefined), future).toBeUndefined();
  });

  it('reads a changed table afresh (a reload brings a new frozen object)', () => {
    expect(priceFor('m', Object.freeze({ m: price(1, 1) }))).toEqual(price(1, 1));
    expect(priceFor('m', Object.freeze({ m: price(2, 2) }))).toEqual(price(2, 2));
  });
});

describe('the shipped prices', () => {
  // Real model ids as each vendor's API names them in answers: the alias and a dated snapshot.
  const REAL: Record<string, { input: number; output: number }> = {
    'claude-opus-4-5-20251101': { input: 5, output: 25 },
    'claude-3-sonnet-20240229': { input: 3, output: 15 },
    'gpt-5.2-2025-12-11': { input: 1.75, output: 14 },
    'gpt-5.2-pro-2025-12-11': { input: 21, output: 168 },
    'gemini-1.5-pro-002': { input: 1.25, output: 5 },
    'gemini-1.5-flash-002': { input: 0.075, output: 0.3 },
    'gemini-1.5-flash-8b-001': { input: 0.0375, output: 0.15 },
    'gpt-4': { input: 30, output: 60 },
    'gpt-4-turbo-2024-04-09': { input: 10, output: 30 },
    'gpt-4-32k': { input: 60, output: 120 },
    'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
    'claude-2.1': { input: 8, output: 24 },
    'claude-sonnet-4-6': { input: 3, output: 15 },
    'claude-opus-4-7': { input: 5, output: 25 },
    'claude-opus-5-5': { input: 4, output: 20 },
    'claude-haiku-5-5': { input: 0.1, output: 0.5 },
    'gemini-3-flash-preview': { input: 0.5, output: 3 },
    'gemini-3.1-pro-preview': { input: 2, output: 12 },
    'claude-opus-4-5': { input: 5, output: 25 },
    'claude-opus-4-1-20250805': { input: 15, output: 75 },
    'claude-opus-4-20250514': { input: 15, output: 75 },
    'claude-opus-4-0': { input: 15, output: 75 },
    'claude-sonnet-4-5-20250929': { input: 3, output: 15 },
    'claude-sonnet-4-20250514': { input: 3, output: 15 },
    'claude-haiku-4-5-20251001': { input: 1, output: 5 },
    'claude-3-7-sonnet-20250219': { input: 3, output: 15 },
    'claude-3-5-sonnet-20241022': { input: 3, output: 15 },
    'claude-3-5-haiku-20241022': { input: 0.8, output: 4 },
    'claude-3-5-haiku-latest': { input: 0.8, output: 4 },
    'claude-3-opus-20240229': { input: 15, output: 75 },
    'claude-3-haiku-20240307': { input: 0.25, output: 1.25 },
    'gpt-5.1-2025-11-13': { input: 1.25, output: 10 },
    'gpt-5.1-codex-mini': { input: 0.25, output: 2 },
    'gpt-5-2025-08-07': { input: 1.25, output: 10 },
    'gpt-5-mini-2025-08-07': { input: 0.25, output: 2 },
    'gpt-5-nano-2025-08-07': { input: 0.05, output: 0.4 },
    'gpt-5-pro-2025-10-06': { input: 15, output: 120 },
    'gpt-4.1-2025-04-14': { input: 2, output: 8 },
    'gpt-4.1-mini-2025-04-14': { input: 0.4, output: 1.6 },
    'gpt-4.1-nano-2025-04-14': { input: 0.1, output: 0.4 },
    'gpt-4o-2024-08-06': { input: 2.5, output: 10 },
    'gpt-4o-2024-11-20': { input: 2.5, output: 10 },
    'gpt-4o-2024-05-13': { input: 5, output: 15 },
    'gpt-4o-mini-2024-07-18': { input: 0.15, output: 0.6 },
    'o1-2024-12-17': { input: 15, output: 60 },
    'o1-mini-2024-09-12': { input: 1.1, output: 4.4 },
    'o1-pro-2025-03-19': { input: 150, output: 600 },
    'o3-2025-04-16': { input: 2, output: 8 },
    'o3-deep-research-2025-06-26': { input: 10, output: 40 },
    'o4-mini-deep-research-2025-06-26': { input: 2, output: 8 },
    'o3-mini-2025-01-31': { input: 1.1, output: 4.4 },
    'o3-pro-2025-06-10': { input: 20, output: 80 },
    'o4-mini-2025-04-16': { input: 1.1, output: 4.4 },
    'text-embedding-3-small': { input: 0.02, output: 0 },
    'gemini-3-pro-preview': { input: 2, output: 12 },
    'gemini-2.5-pro': { input: 1.25, output: 10 },
    'gemini-2.5-pro-preview-06-05': { input: 1.25, output: 10 },
    'gemini-2.5-flash': { input: 0.3, output: 2.5 },
    'gemini-2.5-flash-preview-09-2025': { input: 0.3, output: 2.5 },
    'gemini-2.5-flash-lite': { input: 0.1, output: 0.4 },
    'gemini-2.5-flash-lite-preview-06-17': { input: 0.1, output: 0.4 },
    'gemini-2.0-flash-001': { input: 0.1, output: 0.4 },
    'gemini-2.0-flash-lite-001': { input: 0.075, output: 0.3 },
  };

  it('prices each real model name and dated snapshot at its list price', () => {
    for (const [model, want] of Object.entries(REAL)) {
      expect(priceFor(model, undefined), model).toMatchObject({ input_per_mtok: want.input, output_per_mtok: want.output });
    }
  });

  it('has every glob match a real name of its row, and no glob twice', () => {
    const globs = PRICE_ROWS.flatMap((row) => row.models);
    expect(new Set(globs).size).toBe(globs.length);
    const names = Object.keys(REAL);
    for (const row of PRICE_ROWS) {
      // Each row is reached by a real name of this list or by its own full name (the alias).
      const reached = [...names, ...row.models.filter((m) => !/[*?]/.test(m))].some(
        (name) => priceMatch(name, undefined)?.price === DEFAULT_PRICES[row.models[0]!],
      );
      expect(reached, row.models.join(', ')).toBe(true);
      for (const glob of row.models.filter((m) => /[*?]/.test(m))) {
        expect(
          names.some((name) => priceMatch(name, undefined)?.glob === glob),
          `${glob} matches none of the real names: add one`,
        ).toBe(true);
      }
    }
  });

  it('says every price is a finite number of 0 or more, and is dated', () => {
    expect(PRICES_AS_OF).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const [glob, entry] of Object.entries(DEFAULT_PRICES)) {
      for (const value of Object.values(entry)) expect(Number.isFinite(value) && value >= 0, glob).toBe(true);
    }
  });
});

describe('fallbackPrice', () => {
  it('is the user\'s "*" entry when there is one, else the vendor\'s highest shipped price of each kind, cache reads at full input', () => {
    expect(VENDOR_CEILINGS.anthropic).toEqual({ input_per_mtok: 15, output_per_mtok: 75, cached_input_per_mtok: 15, cache_write_per_mtok: 18.75 });
    expect(VENDOR_CEILINGS.openai).toEqual({ input_per_mtok: 150, output_per_mtok: 600, cached_input_per_mtok: 150, cache_write_per_mtok: 150 });
    expect(VENDOR_CEILINGS.gemini).toEqual({ input_per_mtok: 2, output_per_mtok: 12, cached_input_per_mtok: 2, cache_write_per_mtok: 2 });
    // Never below any shipped model of the vendor.
    for (const row of PRICE_ROWS) {
      const ceiling = VENDOR_CEILINGS[row.vendor];
      expect(ceiling.input_per_mtok >= row.price.input_per_mtok && ceiling.output_per_mtok >= row.price.output_per_mtok, row.models[0]).toBe(true);
    }
    expect(fallbackPrice('openai', undefined)).toEqual({ price: VENDOR_CEILINGS.openai, glob: 'openai: highest shipped', from: 'default' });
    const mine = { '*': { input_per_mtok: 1, output_per_mtok: 2 }, 'gpt-*': { input_per_mtok: 9, output_per_mtok: 9 } };
    expect(fallbackPrice('openai', mine)).toEqual({ price: mine['*'], glob: '*', from: 'config' });
  });
});

describe('costOf', () => {
  it('Anthropic: cache reads and writes inside input_tokens, each at its own price', () => {
    // A message_start/message_delta pair: input_tokens 1000, cache_read 20000, cache_creation 5000, output 800.
    const usage: ModelUsage = { model: 'claude-sonnet-4-5', input_tokens: 26_000, cached_input_tokens: 20_000, cache_write_tokens: 5_000, output_tokens: 800 };
    const cost = costOf(usage, priceFor(usage.model, undefined)!);
    expect(cost).toBeCloseTo((1_000 * 3 + 20_000 * 0.3 + 5_000 * 3.75 + 800 * 15) / 1e6, 12);
  });

  it('OpenAI: cached tokens at the cached price, no cache writes', () => {
    const usage: ModelUsage = { model: 'gpt-4o', input_tokens: 12_000, cached_input_tokens: 10_240, output_tokens: 512 };
    expect(costOf(usage, priceFor('gpt-4o', undefined)!)).toBeCloseTo((1_760 * 2.5 + 10_240 * 1.25 + 512 * 10) / 1e6, 12);
  });

  it('Gemini: cached content at the cache price, thinking counted in output', () => {
    const usage: ModelUsage = { model: 'gemini-2.5-flash', input_tokens: 4_000, cached_input_tokens: 3_000, output_tokens: 1_500 };
    expect(costOf(usage, priceFor('gemini-2.5-flash', undefined)!)).toBeCloseTo((1_000 * 0.3 + 3_000 * 0.03 + 1_500 * 2.5) / 1e6, 12);
  });

  it('prices cache reads and writes at the input price where the table gives none', () => {
    const usage: ModelUsage = { model: 'm', input_tokens: 1_000_000, cached_input_tokens: 250_000, cache_write_tokens: 250_000, output_tokens: 1_000_000 };
    expect(costOf(usage, price(2, 10))).toBe(12);
    expect(costOf(usage, price(2, 10, { cached_input_per_mtok: 0.2, cache_write_per_mtok: 2.5 }))).toBe(1 + 0.05 + 0.625 + 10);
  });

  it('never charges a negative uncached part when a meter reports more cached than input', () => {
    const usage: ModelUsage = { model: 'm', input_tokens: 100, cached_input_tokens: 150, output_tokens: 0 };
    expect(costOf(usage, price(2, 10, { cached_input_per_mtok: 1 }))).toBe((150 * 1) / 1e6);
  });

  it('sums 10,000 random answers to within 1e-6 USD of an exact sum', () => {
    // An exact reference: prices in millionths of a dollar (every shipped price has at most 3
    // decimals), tokens as integers, so each cost is a whole number of 1e-12 USD in a BigInt.
    let seed = 63;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const models = Object.keys(DEFAULT_PRICES).filter((m) => !/[*?]/.test(m));
    const micro = (usd: number) => BigInt(Math.round(usd * 1e6));
    let exact = 0n;
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const model = models[Math.floor(random() * models.length)]!;
      const entry = DEFAULT_PRICES[model]!;
      const input = Math.floor(random() * 400_000);
      const cached = Math.floor(random() * input * 0.7);
      const written = Math.floor(random() * (input - cached));
      const output = Math.floor(random() * 64_000);
      sum += costOf({ model, input_tokens: input, cached_input_tokens: cached, cache_write_tokens: written, output_tokens: output }, entry);
      exact +=
        BigInt(input - cached - written) * micro(entry.input_per_mtok) +
        BigInt(cached) * micro(entry.cached_input_per_mtok ?? entry.input_per_mtok) +
        BigInt(written) * micro(entry.cache_write_per_mtok ?? entry.input_per_mtok) +
        BigInt(output) * micro(entry.output_per_mtok);
    }
    const exactUsd = Number(exact / 1_000_000_000_000n) + Number(exact % 1_000_000_000_000n) / 1e12;
    expect(exactUsd).toBeGreaterThan(1_000);
    expect(Math.abs(sum - exactUsd)).toBeLessThan(1e-6);
  });
});
