import type { ModelPrice } from '../config/spend.ts';

// The shipped list prices, USD per million tokens, as the vendors published them on PRICES_AS_OF.
// List prices change, and new models come: the config's `pricing:` is asked before this table
// (spend/pricing.ts), so a user fixes a stale or missing price there, without waiting for a release.
// docs/spend.md ("Prices") names this file and its date.
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

/** The date these prices were taken from the vendors' pages. */
export const PRICES_AS_OF = '2025-11-24';

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

  // OpenAI: cached input as published per model (no cache-write charge).
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
  { vendor: 'openai', models: ['text-embedding-3-small'], price: p(0.02, 0) },
  { vendor: 'openai', models: ['text-embedding-3-large'], price: p(0.13, 0) },
  { vendor: 'openai', models: ['text-embedding-ada-002'], price: p(0.1, 0) },

  // Google Gemini (paid tier, text; prompts up to 200k tokens): context cache reads at 0.1x input.
  // `-preview-??-*` takes the dated previews (-preview-06-05, -preview-09-2025), not the TTS or
  // native-audio previews, which are priced apart.
  { vendor: 'gemini', models: ['gemini-3-pro-preview'], price: p(2, 12, 0.2) },
  { vendor: 'gemini', models: ['gemini-2.5-pro', 'gemini-2.5-pro-preview-??-*'], price: p(1.25, 10, 0.125) },
  { vendor: 'gemini', models: ['gemini-2.5-flash', 'gemini-2.5-flash-preview-??-*'], price: p(0.3, 2.5, 0.03) },
  { vendor: 'gemini', models: ['gemini-2.5-flash-lite', 'gemini-2.5-flash-lite-preview-??-*'], price: p(0.1, 0.4, 0.01) },
  { vendor: 'gemini', models: ['gemini-2.0-flash', 'gemini-2.0-flash-0??'], price: p(0.1, 0.4, 0.025) },
  { vendor: 'gemini', models: ['gemini-2.0-flash-lite', 'gemini-2.0-flash-lite-0??'], price: p(0.075, 0.3) },
  { vendor: 'gemini', models: ['gemini-embedding-001'], price: p(0.15, 0) },
];

/** The rows as one table, shaped as the config's `pricing:` (spend/pricing.ts reads both alike). */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze(
  Object.fromEntries(PRICE_ROWS.flatMap((row) => row.models.map((model) => [model, Object.freeze(row.price)] as const))),
);
