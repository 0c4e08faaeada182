// What a metered request's body says about what it will cost, read as it goes up (issue 85): the
// model it asks for, the most output it allows, and whether it continues a conversation the vendor
// keeps (so its input is more than its body). Read by stage model-body (src/proxy/stages) under a
// budget; used by the close (proxy/model-exchange.ts) when the answer names no model or never came,
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
