import type { MeterPlan } from './meters/routes.ts';
import type { ModelApi } from './usage.ts';

// What a metered request's body says about what it will cost, read as it goes up (issue 85): the
// model it asks for, the most output it allows, and whether it continues a conversation the vendor
// keeps (so its input is more than its body). Read by stage model-body (src/proxy/stages) under a
// budget; used by the close (proxy/stages/model-exchange.ts) when the answer names no model or never came,
// so a request that went up is counted at a floor (docs/spend.md, "What a request costs at least").

export interface RequestFacts {
  /** The top-level `model` (a string), as written; null when the body names none. */
  model: string | null;
  /**
   * The output cap the request sets (`max_tokens`, `max_output_tokens`, `max_completion_tokens`,
   * Gemini's `generationConfig.maxOutputTokens`); null when it sets none.
   */
  maxOutputTokens: number | null;
  /** Responses `previous_response_id` or `conversation`, Gemini `cachedContent`: its input includes what the vendor kept. */
  continues: string | null;
}

/**
 * The output a request left before its answer's usage counts at least, when its body names no cap:
 * the most a vendor writes by default that keyway can rely on. Anthropic requires `max_tokens` (a
 * body without it is refused, unbilled; 4,096 stands for a gateway that fills one in). OpenAI and
 * Gemini default to the model's own limit: 16,384 is GPT-4o's and 8,192 the Gemini 1.5 / 2.0
 * default; newer models may write more (docs/spend.md, "What a request costs at least").
 */
export const DEFAULT_OUTPUT_FLOOR: Readonly<Record<ModelApi, number>> = { anthropic: 4096, openai: 16_384, gemini: 8192 };

/** A cap counted at most this: no vendor's model writes more in one answer, and a made-up cap stays a number the ledger sums. */
export const MAX_OUTPUT_FLOOR = 1_000_000;

/** The output a request counts at least when it is left before its usage: its cap, else the vendor's default; embeddings write none. */
export function outputFloor(plan: MeterPlan, facts: RequestFacts): number {
  if (plan.route === 'openai-embeddings') return 0;
  const cap = facts.maxOutputTokens;
  return cap === null ? DEFAULT_OUTPUT_FLOOR[plan.api] : Math.min(cap, MAX_OUTPUT_FLOOR);
}
