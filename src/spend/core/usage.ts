// What a model said it used, in one shape for every vendor (issue 63). The meters
// (spend/core/meters/) read it from the answers keyway forwards; pricing turns it into dollars; the
// spend ledger (spend/ledger/ledger.ts) counts it against budgets; the audit line carries it.
//
// The counts follow OpenAI's meaning, whatever the vendor:
// - input_tokens: every input token of the request, cached or not. Anthropic reports its cache
//   reads and writes apart from `input_tokens`; they are added in here.
// - cached_input_tokens: the part of input_tokens read from the vendor's prompt cache (billed at
//   cached_input_per_mtok): OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`, Gemini
//   `cachedContentTokenCount`.
// - cache_write_tokens: the part of input_tokens written to the cache (Anthropic
//   `cache_creation_input_tokens`; billed at cache_write_per_mtok, else the input price).
// - output_tokens: every output token, reasoning and thinking included (Gemini's
//   `thoughtsTokenCount` is added to `candidatesTokenCount`).

import type { ModelApiHint } from '../../config/spend.ts';

/** The wire formats keyway can meter. A grant's `model_api` names one; the vendors' own hosts have defaults. */
export const MODEL_APIS = ['anthropic', 'openai', 'gemini'] as const satisfies readonly ModelApiHint[];
export type ModelApi = (typeof MODEL_APIS)[number];

export interface ModelUsage {
  /** The model as the answer names it (else as the request named it); null when neither said. */
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens?: number | undefined;
  cache_write_tokens?: number | undefined;
}

/** What one answer's meter concluded. */
export interface UsageReading {
  /** Undefined: the answer said nothing of its usage (or could not be read): counted as unknown and flagged. */
  usage: ModelUsage | undefined;
  /**
   * `reported`: the answer's own final usage. `partial`: the answer stopped early (the client left,
   * the upstream broke off): what was delivered, from the usage seen so far and the output delivered
   * (never zero output for output that reached the client). `estimated`: the answer said nothing
   * of its usage and a budget applied: counted at `estimate`, its bytes as tokens.
   */
  basis: 'reported' | 'partial' | 'estimated';
  /**
   * For an answer that said nothing of its usage (usage undefined): what its bytes say it used
   * (Tally.ended). Counted in its place where unknown is not free, under a budget (basis
   * `estimated`; app/spend-part.ts); else the answer is counted as unknown, with no tokens.
   */
  estimate?: ModelUsage | undefined;
  /**
   * Set where the answer is priced (app/spend-part.ts): its model had no price of its own and a
   * budget in dollars applied, so it was priced at the fallback (spend/core/pricing.ts fallbackPrice).
   */
  price?: 'fallback' | undefined;
}

/** Bytes per token where an answer's usage is estimated from its size (request and answer alike). */
export const BYTES_PER_TOKEN = 4;

/** Tokens a `{tokens: N}` budget counts: every input and output token. */
export function totalTokens(usage: ModelUsage): number {
  return usage.input_tokens + usage.output_tokens;
}
