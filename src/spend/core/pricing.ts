import type { ModelPrice } from '../../config/spend.ts';
import { DEFAULT_PRICES, PRICE_ROWS } from './default-prices.ts';
import type { ModelApi, ModelUsage } from './usage.ts';

// A model's price and an answer's cost (pure). The config's `pricing:` is asked first, then the
// shipped defaults (default-prices.ts): a user's entry for a model always beats ours, whatever
// either's glob. Within one table the most specific entry wins: a name written out in full, then the
// glob with the most literal characters (`claude-sonnet-4-5*` over `claude-sonnet-4*` over `*`),
// then the first listed. A model nobody named, or no entry matches, has no price: its tokens are
// counted and the answer flagged unpriced by the caller, never priced at zero.
//
// Where a budget in dollars applies, a model with no price is not free: it is priced at the
// fallback (fallbackPrice), the user's `"*"` entry when the config has one, else the highest list
// price keyway ships for the vendor whose wire format the answer came in (every row's highest
// input, output and cache-write price, cache reads at that input price): never less than any
// shipped model of that vendor costs. The caller flags such a cost (`price: "fallback"`).
//
// Names match case-insensitively: vendors name models in lower case, and a gateway's
// `GPT-4o` is the same model as `gpt-4o`, not an unpriced one.

/** A model's name or glob -> its price, in the order written. */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** The entry that priced a model, for listings that say why (`keyway spend`, doctor). */
export interface PriceMatch {
  readonly price: ModelPrice;
  /** The name or glob as the table writes it. */
  readonly glob: string;
  readonly from: 'config' | 'default';
}

/** The price of `model`: the user's table first, then the defaults; undefined when neither prices it. */
export function priceFor(model: string | null, userPricing: PriceTable | undefined): ModelPrice | undefined {
  if (model === null || model === '') return undefined;
  // Per metered answer: no object made for the match (priceMatch makes one to say where it came from).
  return (userPricing === undefined ? undefined : compiled(userPricing).lookup(model)?.price) ?? compiled(DEFAULT_PRICES).lookup(model)?.price;
}

/** As priceFor, with the entry that matched and the table it is in. */
export function priceMatch(model: string | null, userPricing: PriceTable | undefined): PriceMatch | undefined {
  if (model === null || model === '') return undefined;
  const mine = userPricing === undefined ? undefined : compiled(userPricing).lookup(model);
  if (mine !== undefined) return { price: mine.price, glob: mine.glob, from: 'config' };
  const ours = compiled(DEFAULT_PRICES).lookup(model);
  return ours === undefined ? undefined : { price: ours.price, glob: ours.glob, from: 'default' };
}

/** The user's `"*"` entry, else the vendor's highest shipped prices: what a model with no price costs under a USD budget. */
export function fallbackPrice(api: ModelApi, userPricing: PriceTable | undefined): PriceMatch {
  const mine = userPricing?.['*'];
  if (mine !== undefined) return { price: mine, glob: '*', from: 'config' };
  return { price: VENDOR_CEILINGS[api], glob: `${api}: highest shipped`, from: 'default' };
}

/** Per vendor, the highest of each shipped price (computed once from the table, so a new row moves it). */
export const VENDOR_CEILINGS: Readonly<Record<ModelApi, ModelPrice>> = Object.freeze({
  anthropic: ceilingOf('anthropic'),
  openai: ceilingOf('openai'),
  gemini: ceilingOf('gemini'),
});

function ceilingOf(vendor: ModelApi): ModelPrice {
  let input = 0;
  let output = 0;
  let write = 0;
  for (const row of PRICE_ROWS) {
    if (row.vendor !== vendor) continue;
    input = Math.max(input, row.price.input_per_mtok);
    output = Math.max(output, row.price.output_per_mtok);
    write = Math.max(write, row.price.cache_write_per_mtok ?? row.price.input_per_mtok);
  }
  // Cache reads at the full input price: no discount is assumed for a model nobody priced.
  return Object.freeze({ input_per_mtok: input, output_per_mtok: output, cached_input_per_mtok: input, cache_write_per_mtok: write });
}

/**
 * An answer's cost in USD: uncached input at the input price, cache reads and writes at theirs
 * (the input price where the table gives none), output at the output price; per million tokens.
 * The uncached part is never below zero, should a meter report more cached than input.
 */
export function costOf(usage: ModelUsage, price: ModelPrice): number {
  const cached = usage.cached_input_tokens ?? 0;
  const written = usage.cache_write_tokens ?? 0;
  const uncached = Math.max(0, usage.input_tokens - cached - written);
  // Summed in USD per million, then divided once: one rounding less per answer than four divisions.
  const micro =
    uncached * price.input_per_mtok +
    cached * (price.cached_input_per_mtok ?? price.input_per_mtok) +
    written * (price.cache_write_per_mtok ?? price.input_per_mtok) +
    usage.output_tokens * price.output_per_mtok;
  return micro / 1e6;
}

interface Entry {
  readonly glob: string;
  readonly literal: number;
  readonly exact: boolean;
  readonly pattern: RegExp;
  readonly price: ModelPrice;
}

interface Compiled {
  lookup(model: string): Entry | undefined;
}

/** Each table compiled once (the config's is frozen and replaced whole on reload). */
const tables = new WeakMap<PriceTable, Compiled>();

/** Lookups remembered per table: model names are few; the bound keeps a flood of made-up names from growing it. */
const REMEMBERED = 1_000;

function compiled(table: PriceTable): Compiled {
  let found = tables.get(table);
  if (found === undefined) {
    found = compile(table);
    tables.set(table, found);
  }
  return found;
}

function compile(table: PriceTable): Compiled {
  const entries: Entry[] = Object.entries(table).map(([glob, price]) => ({
    glob,
    literal: glob.replace(/[*?]/g, '').length,
    exact: !/[*?]/.test(glob),
    pattern: globPattern(glob),
    price,
  }));
  const memo = new Map<string, Entry | null>();
  return {
    // Remembered by the name as the answer spells it (lowered only to match): no lowered copy made
    // per answer for a name seen before.
    lookup(model) {
      let best = memo.get(model);
      if (best === undefined) {
        const key = model.toLowerCase();
        best = null;
        for (const entry of entries) {
          if (!entry.pattern.test(key)) continue;
          // Strictly better only: on a tie the entry listed first stays.
          if (best === null || better(entry, best)) best = entry;
        }
        if (memo.size >= REMEMBERED) memo.clear();
        memo.set(model, best);
      }
      return best === null ? undefined : best;
    },
  };
}

function better(a: Entry, b: Entry): boolean {
  if (a.exact !== b.exact) return a.exact;
  return a.literal > b.literal;
}

/** `*` any run of characters, `?` one; everything else literal, case-insensitive (the key is lowered). */
function globPattern(glob: string): RegExp {
  const body = [...glob.toLowerCase()].map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 's');
}
