// The config's spend keys (issue 63), as the rest of keyway reads them once validated. The zod
// schema beside them turns the YAML into these; see docs/spend.md.
//
//   pricing:                       # USD per million tokens, by model glob; over the shipped defaults
//     "claude-sonnet-4*": {input_per_mtok: 3, output_per_mtok: 15, cached_input_per_mtok: 0.3}
//   budgets:
//     - {agent: ci-bot, limit: {usd: 5}, per: day, warn_at: 0.8, over: refuse}
//     - {end_user: "*", limit: {tokens: 2000000}, per: month, over: approve}
//   grants:
//     my-gateway: {…, model_api: openai}   # meter this grant's answers as OpenAI's wire format

/**
 * What a grant's `model_api` may say: the wire format its answers are metered as, or `none` (never
 * metered, even on a vendor's own host). Here, below spend/, so that the config's schema can name them.
 */
export const MODEL_API_HINTS = ['anthropic', 'openai', 'gemini', 'none'] as const;
export type ModelApiHint = (typeof MODEL_API_HINTS)[number];

/**
 * A `pricing:` key: a model name, or a glob with `*` (any run of characters) and `?` (one). What model
 * ids are made of across vendors and gateways (`gpt-4o-2024-08-06`, `models/gemini-2.5-pro`,
 * `anthropic.claude-sonnet-4-5-20250929-v1:0`, `claude-opus-4-1@20250805`); nothing else.
 */
export const MODEL_GLOB = /^[A-Za-z0-9._:/@+*?-]+$/;

export interface ModelPrice {
  input_per_mtok: number;
  output_per_mtok: number;
  /** Cache reads; absent: the input price. */
  cached_input_per_mtok?: number | undefined;
  /** Cache writes (Anthropic); absent: the input price. */
  cache_write_per_mtok?: number | undefined;
}

/** A budget's selector value: one agent, grant or end user by name, or `*` for each of them apart. */
export interface BudgetConfig {
  /** Where it stands in the config (`budgets[2]`): its name in hints, audit lines and listings. */
  readonly name: string;
  readonly agent?: string | undefined;
  readonly grant?: string | undefined;
  /** An end user: the subject an identity token proved (audit `identity.sub`). */
  readonly end_user?: string | undefined;
  readonly limit: { readonly usd: number } | { readonly tokens: number };
  readonly per: 'hour' | 'day' | 'month';
  /** A fraction of the limit past which a person is told (the approvals' notify channel), once per period. */
  readonly warn_at?: number | undefined;
  readonly over: 'refuse' | 'approve';
}
