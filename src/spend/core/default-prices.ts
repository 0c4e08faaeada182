import type { ModelPrice } from '../../config/spend.ts';

// The shipped list prices, USD per million tokens, as the vendors published them on PRICES_AS_OF
// (where each row's price was read: PRICE_SOURCES). List prices change, and new models come: the
// config's `pricing:` is asked before this table (spend/core/pricing.ts), so a user fixes a stale or
// missing price there, without waiting for a release. `keyway doctor` warns once PRICES_AS_OF is
// more than PRICES_STALE_DAYS old. docs/spend.md ("Prices") names this file, its date and sources.
//
// Each model is written out in full and as its dated snapshots (`claude-sonnet-4-5-20*` for
// claude-sonnet-4-5-20250929, `gpt-4o-20*` for gpt-4o-2024-08-06, `-preview-??-*` for Gemini's
// dated previews), never as a bare prefix: `gpt-5*` would price a gpt-5.2 nobody has priced at
// gpt-5's rate, where unpriced (counted in tokens and flagged) is the honest answer.
//
// What this table cannot say (priced at the base tier; docs/spend.md lists the gaps):
// - Anthropic: prompts over 200k tokens on Sonnet 4/4.5 (1M context) cost more; cache writes are
//   priced as 5-minute writes (1.25x input), not 1-hour ones (2x).
// - Gemini: 2.5 Pro and 3 Pro prompts over 200k tokens cost more; audio input on Flash costs more;
//   context cache storage is billed by the hour, apart from requests.
// - OpenAI: the Batch, Flex and Priority tiers; web search and other tools' calls.

/**
 * The date of the table's oldest check: every row was checked against its source on or after it.
 * Moved forward only when every row has been checked again (doctor counts its age from it).
 */
export const PRICES_AS_OF = '2025-11-24';

/** Past this many days after PRICES_AS_OF, `keyway doctor` says the shipped prices may be stale. */
export const PRICES_STALE_DAYS = 90;

/** Where the rows' prices were read, and when. */
export const PRICE_SOURCES: readonly string[] = [
  "2025-11-24: the vendors' pricing pages (anthropic.com/pricing, openai.com/api/pricing, ai.google.dev/gemini-api/docs/pricing), every row then in the table",
  "2026-11-29: the model catalog inside @anthropic-ai/claude-code 2.1.332 (its pricing_tiers, Anthropic's list prices), for the Claude models it calls",
  "2026-11-29: the list prices the vendors published with each model (gpt-4, gpt-4-32k, gpt-4-turbo, gpt-3.5-turbo, claude-2, claude-3-sonnet, Gemini 1.5), and as pages quoting ai.google.dev and openai.com give them (gpt-5.2, gemini-3-flash-preview, gemini-3.1-pro-preview): not re-read from the vendors' own pages",
];

interface Row {
  readonly vendor: 'anthropic' | 'openai' | 'gemini';
  /** Names and globs, each a key of the table. */
  readonly models: readonly string[];
  readonly price: ModelPrice;
}

/** Input, output, cache read, cache write (absent: the input price; absent cache read: no discount known). */
const p = (input: number, output: number, cached?: number, cacheWrite?: number): ModelPrice => ({
  input_per_mtok: input,
  output_per_mtok: output,
  ...(cached !== undefined ? { cached_input_per_mtok: cached } : {}),
  ...(cacheWrite !== undefined ? { cache_write_per_mtok: cacheWrite } : {}),
});

/** A model by name and its dated snapshots (Anthropic's -20250929, OpenAI's -2025-08-07). */
const dated = (name: string): string[] => [name, `${name}-20*`];

export const PRICE_ROWS: readonly Row[] = [
  // Anthropic: cache reads 0.1x input, 5-minute cache writes 1.25x.
  // The Claude models @anthropic-ai/claude-code 2.1.332 calls (its catalog's pricing tiers).
  { vendor: 'anthropic', models: ['claude-opus-5-5'], price: p(4, 20, 0.2, 5) },
  { vendor: 'anthropic', models: ['claude-opus-5', 'claude-opus-4-8', 'claude-opus-4-7', 'claude-opus-4-6'], price: p(5, 25, 0.5, 6.25) },
  { vendor: 'anthropic', models: ['claude-sonnet-5-5'], price: p(2, 10, 0.1, 2.5) },
  { vendor: 'anthropic', models: ['claude-sonnet-5'], price: p(2, 10, 0.2, 2.5) },
  { vendor: 'anthropic', models: ['claude-sonnet-4-6'], price: p(3, 15, 0.3, 3.75) },
  // Haiku 5.5: prompts over 100k tokens cost 5x (0.5 / 2.5): priced at the base tier (see above).
  { vendor: 'anthropic', models: ['claude-haiku-5-5'], price: p(0.1, 0.5, 0.01, 0.125) },
  { vendor: 'anthropic', models: ['claude-fable-5', 'claude-mythos-5'], price: p(10, 50, 1, 12.5) },
  { vendor: 'anthropic', models: ['claude-fable-5-1', 'claude-mythos-5-1'], price: p(10, 50, 0.25, 12.5) },
  { vendor: 'anthropic', models: ['claude-fable-5-2', 'claude-mythos-5-2'], price: p(8, 40, 0.2, 10) },
  { vendor: 'anthropic', models: dated('claude-opus-4-5'), price: p(5, 25, 0.5, 6.25) },
  { vendor: 'anthropic', models: dated('claude-opus-4-1'), price: p(15, 75, 1.5, 18.75) },
  { vendor: 'anthropic', models: ['claude-opus-4-0', 'claude-opus-4-20*'], price: p(15, 75, 1.5, 18.75) },
  { vendor: 'anthropic', models: dated('claude-sonnet-4-5'), price: p(3, 15, 0.3, 3.75) },
  { vendor: 'anthropic', models: ['claude-sonnet-4-0', 'claude-sonnet-4-20*'], price: p(3, 15, 0.3, 3.75) },
  { vendor: 'anthropic', models: dated('claude-haiku-4-5'), price: p(1, 5, 0.1, 1.25) },
  { vendor: 'anthropic', models: ['claude-3-7-sonnet-20*', 'claude-3-7-sonnet-latest'], price: p(3, 15, 0.3, 3.75) },
  { vendor: 'anthropic', models: ['claude-3-5-sonnet-20*', 'claude-3-5-sonnet-latest'], price: p(3, 15, 0.3, 3.75) },
  { vendor: 'anthropic', models: ['claude-3-5-haiku-20*', 'claude-3-5-haiku-latest'], price: p(0.8, 4, 0.08, 1) },
  { vendor: 'anthropic', models: ['claude-3-opus-20*', 'claude-3-opus-latest'], price: p(15, 75, 1.5, 18.75) },
  { vendor: 'anthropic', models: ['claude-3-haiku-20*'], price: p(0.25, 1.25, 0.03, 0.3) },
  // Older models, still asked for by name: Claude 3 Sonnet and Claude 2 had no prompt cache.
  { vendor: 'anthropic', models: ['claude-3-sonnet-20*'], price: p(3, 15) },
  { vendor: 'anthropic', models: ['claude-2.1', 'claude-2.0', 'claude-2'], price: p(8, 24) },
  { vendor: 'anthropic', models: ['claude-instant-1.2', 'claude-instant-1'], price: p(0.8, 2.4) },

  // OpenAI: cached input as published per model (no cache-write charge).
  { vendor: 'openai', models: dated('gpt-5.2'), price: p(1.75, 14, 0.175) },
  { vendor: 'openai', models: dated('gpt-5.2-pro'), price: p(21, 168) },
  { vendor: 'openai', models: [...dated('gpt-5.1'), 'gpt-5.1-chat-latest', 'gpt-5.1-codex'], price: p(1.25, 10, 0.125) },
  { vendor: 'openai', models: ['gpt-5.1-codex-mini'], price: p(0.25, 2, 0.025) },
  { vendor: 'openai', models: [...dated('gpt-5'), 'gpt-5-chat-latest', 'gpt-5-codex'], price: p(1.25, 10, 0.125) },
  { vendor: 'openai', models: dated('gpt-5-mini'), price: p(0.25, 2, 0.025) },
  { vendor: 'openai', models: dated('gpt-5-nano'), price: p(0.05, 0.4, 0.005) },
  { vendor: 'openai', models: dated('gpt-5-pro'), price: p(15, 120) },
  { vendor: 'openai', models: dated('gpt-4.1'), price: p(2, 8, 0.5) },
  { vendor: 'openai', models: dated('gpt-4.1-mini'), price: p(0.4, 1.6, 0.1) },
  { vendor: 'openai', models: dated('gpt-4.1-nano'), price: p(0.1, 0.4, 0.025) },
  { vendor: 'openai', models: dated('gpt-4o'), price: p(2.5, 10, 1.25) },
  // gpt-4o's first snapshot kept its launch price (a name written in full beats gpt-4o-20*).
  { vendor: 'openai', models: ['gpt-4o-2024-05-13', 'chatgpt-4o-latest'], price: p(5, 15) },
  { vendor: 'openai', models: dated('gpt-4o-mini'), price: p(0.15, 0.6, 0.075) },
  { vendor: 'openai', models: dated('o1'), price: p(15, 60, 7.5) },
  { vendor: 'openai', models: dated('o1-pro'), price: p(150, 600) },
  { vendor: 'openai', models: dated('o1-mini'), price: p(1.1, 4.4, 0.55) },
  { vendor: 'openai', models: dated('o3'), price: p(2, 8, 0.5) },
  { vendor: 'openai', models: dated('o3-pro'), price: p(20, 80) },
  { vendor: 'openai', models: dated('o3-mini'), price: p(1.1, 4.4, 0.55) },
  { vendor: 'openai', models: dated('o3-deep-research'), price: p(10, 40, 2.5) },
  { vendor: 'openai', models: dated('o4-mini'), price: p(1.1, 4.4, 0.275) },
  { vendor: 'openai', models: dated('o4-mini-deep-research'), price: p(2, 8, 0.5) },
  // The GPT-4 and GPT-3.5 generation, still served and still asked for by name (no prompt cache).
  { vendor: 'openai', models: ['gpt-4', 'gpt-4-0613', 'gpt-4-0314'], price: p(30, 60) },
  { vendor: 'openai', models: ['gpt-4-32k', 'gpt-4-32k-0613', 'gpt-4-32k-0314'], price: p(60, 120) },
  {
    vendor: 'openai',
    models: ['gpt-4-turbo', 'gpt-4-turbo-2024-04-09', 'gpt-4-turbo-preview', 'gpt-4-0125-preview', 'gpt-4-1106-preview', 'gpt-4-vision-preview'],
    price: p(10, 30),
  },
  { vendor: 'openai', models: ['gpt-3.5-turbo', 'gpt-3.5-turbo-0125'], price: p(0.5, 1.5) },
  { vendor: 'openai', models: ['gpt-3.5-turbo-1106'], price: p(1, 2) },
  { vendor: 'openai', models: ['gpt-3.5-turbo-instruct', 'gpt-3.5-turbo-16k'], price: p(1.5, 2) },
  { vendor: 'openai', models: ['text-embedding-3-small'], price: p(0.02, 0) },
  { vendor: 'openai', models: ['text-embedding-3-large'], price: p(0.13, 0) },
  { vendor: 'openai', models: ['text-embedding-ada-002'], price: p(0.1, 0) },

  // Google Gemini (paid tier, text; prompts up to 200k tokens): context cache reads at 0.1x input.
  // `-preview-??-*` takes the dated previews (-preview-06-05, -preview-09-2025), not the TTS or
  // native-audio previews, which are priced apart.
  { vendor: 'gemini', models: ['gemini-3.1-pro-preview', 'gemini-3.1-pro-preview-customtools'], price: p(2, 12, 0.2) },
  { vendor: 'gemini', models: ['gemini-3-pro-preview'], price: p(2, 12, 0.2) },
  { vendor: 'gemini', models: ['gemini-3-flash-preview'], price: p(0.5, 3, 0.05) },
  { vendor: 'gemini', models: ['gemini-2.5-pro', 'gemini-2.5-pro-preview-??-*'], price: p(1.25, 10, 0.125) },
  { vendor: 'gemini', models: ['gemini-2.5-flash', 'gemini-2.5-flash-preview-??-*'], price: p(0.3, 2.5, 0.03) },
  { vendor: 'gemini', models: ['gemini-2.5-flash-lite', 'gemini-2.5-flash-lite-preview-??-*'], price: p(0.1, 0.4, 0.01) },
  { vendor: 'gemini', models: ['gemini-2.0-flash', 'gemini-2.0-flash-0??'], price: p(0.1, 0.4, 0.025) },
  { vendor: 'gemini', models: ['gemini-2.0-flash-lite', 'gemini-2.0-flash-lite-0??'], price: p(0.075, 0.3) },
  // Gemini 1.5 (prompts up to 128k tokens; longer ones cost twice as much).
  { vendor: 'gemini', models: ['gemini-1.5-pro', 'gemini-1.5-pro-0??', 'gemini-1.5-pro-latest'], price: p(1.25, 5, 0.3125) },
  { vendor: 'gemini', models: ['gemini-1.5-flash', 'gemini-1.5-flash-0??', 'gemini-1.5-flash-latest'], price: p(0.075, 0.3, 0.01875) },
  { vendor: 'gemini', models: ['gemini-1.5-flash-8b', 'gemini-1.5-flash-8b-0??', 'gemini-1.5-flash-8b-latest'], price: p(0.0375, 0.15, 0.01) },
  { vendor: 'gemini', models: ['gemini-embedding-001'], price: p(0.15, 0) },
];

/** The rows as one table, shaped as the config's `pricing:` (spend/core/pricing.ts reads both alike). */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze(
  Object.fromEntries(PRICE_ROWS.flatMap((row) => row.models.map((model) => [model, Object.freeze(row.price)] as const))),
);
