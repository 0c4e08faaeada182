// The spend ledger's records in the store (shared by every process and replica on it). Two kinds,
// both additive (each process adds what it counted; nothing is overwritten with a total):
//
// - `spend:<hour>:<agent>:<grant>:<end_user>:<model>`: what was used in one UTC hour
//   (`2026-11-26T22`), for `keyway spend`, the admin API and the dashboard. `_` where a part is
//   absent (an anonymous agent, no end user, a model nobody named); each part is encodeURIComponent'd
//   so a `:` in a model name cannot shift the others. Kept for SPEND_KEPT_DAYS; older history is the
//   audit log's (each line carries its usage and cost).
// - `budget:<key>:<period>`: one budget's count in one period (`2026-11-26T22`, `2026-11-26`,
//   `2026-11`), where key is the budget's own key (its index and selector, see budgetKey in
//   spend/budgets.ts) and the scope value it counts for (the agent, grant or end user).

export const SPEND_PREFIX = 'spend:';
export const BUDGET_PREFIX = 'budget:';
export const SPEND_KEPT_DAYS = 62;

export interface SpendRecord {
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  /** Dollars for the priced requests only. */
  cost_usd: number;
  /** Model answers counted. */
  requests: number;
  /** Of them, answers whose model had no price: their tokens are counted, their cost is not (never silently zero). */
  unpriced: number;
  /** Of them, answers that said nothing of their usage: counted as requests, no tokens. */
  unknown: number;
  /** Of them, answers cut short (partial basis). */
  partial: number;
}

export interface BudgetRecord {
  tokens: number;
  usd: number;
}

const part = (value: string | null | undefined): string => (value === null || value === undefined || value === '' ? '_' : encodeURIComponent(value));

export function spendRecordId(hour: string, agent: string | null, grant: string, endUser: string | null, model: string | null): string {
  return `${SPEND_PREFIX}${hour}:${part(agent)}:${part(grant)}:${part(endUser)}:${part(model)}`;
}

export interface SpendRecordKey {
  hour: string;
  agent: string | null;
  grant: string | null;
  end_user: string | null;
  model: string | null;
}

export function parseSpendRecordId(id: string): SpendRecordKey | undefined {
  if (!id.startsWith(SPEND_PREFIX)) return undefined;
  const parts = id.slice(SPEND_PREFIX.length).split(':');
  if (parts.length !== 5) return undefined;
  const [hour, agent, grant, endUser, model] = parts as [string, string, string, string, string];
  const back = (p: string): string | null => (p === '_' ? null : decodeURIComponent(p));
  return { hour, agent: back(agent), grant: back(grant), end_user: back(endUser), model: back(model) };
}

export const budgetRecordId = (key: string, period: string): string => `${BUDGET_PREFIX}${key}:${period}`;

/** The UTC hour of `at` as records name it: `2026-11-26T22`. */
export const hourOf = (at: Date): string => at.toISOString().slice(0, 13);
