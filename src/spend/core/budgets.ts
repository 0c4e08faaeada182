import type { BudgetConfig } from '../../config/spend.ts';

// A budget's arithmetic, shared by the ledger that counts (spend/ledger/ledger.ts) and the listings
// that show where each stands (keyway spend, GET /api/spend, the dashboard).
//
// A budget counts under a key made of what it selects and how it counts (its selectors, its
// period, its unit), not its place in the config: reordering `budgets:` keeps every count, and two
// budgets that select and count alike share one count (with their own limits). A `*` selector
// counts each agent, grant or end user apart: the key then carries the value it counts for.

export type BudgetPer = BudgetConfig['per'];

/** The unit a budget counts in. */
export const unitOf = (budget: BudgetConfig): 'usd' | 'tokens' => ('usd' in budget.limit ? 'usd' : 'tokens');

export const limitOf = (budget: BudgetConfig): number => ('usd' in budget.limit ? budget.limit.usd : budget.limit.tokens);

const SELECTORS = ['agent', 'grant', 'end_user'] as const;

/**
 * The value a budget counts `scope` under, or undefined when the budget does not apply to it. Each
 * selector given must match (`*` matches any present value, never an absent one: `end_user: "*"`
 * does not count requests no identity token vouched for); none given counts all model traffic.
 */
export function scopeValueOf(budget: BudgetConfig, scope: { agent: string | null; grant: string; end_user: string | null }): string | undefined {
  const parts: string[] = [];
  for (const name of SELECTORS) {
    const wanted = budget[name];
    if (wanted === undefined) continue;
    const have = scope[name];
    if (have === null) return undefined;
    if (wanted === '*') parts.push(`${name}=${encodeURIComponent(have)}`);
    else if (wanted !== have) return undefined;
  }
  return parts.join(',');
}

/** The key of one budget's count for one scope value (store record budget:<key>:<period>). */
export function budgetKey(budget: BudgetConfig, scopeValue: string): string {
  const selects = SELECTORS.filter((name) => budget[name] !== undefined)
    .map((name) => `${name}=${encodeURIComponent(budget[name]!)}`)
    .join(',');
  // ':' never appears: encodeURIComponent escapes it, and the separators here are '|', ',' and '='.
  return `${selects || 'all'}|${budget.per}|${unitOf(budget)}|${scopeValue}`;
}

/** The period `at` falls in, as record ids name it: `2026-11-26T22`, `2026-11-26`, `2026-11` (UTC). */
export function periodOf(per: BudgetPer, at: Date): string {
  const iso = at.toISOString();
  return per === 'hour' ? iso.slice(0, 13) : per === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** When the period `at` falls in ends (UTC): the next period's start. */
export function periodEnd(per: BudgetPer, at: Date): Date {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const d = at.getUTCDate();
  if (per === 'hour') return new Date(Date.UTC(y, m, d, at.getUTCHours() + 1));
  if (per === 'day') return new Date(Date.UTC(y, m, d + 1));
  return new Date(Date.UTC(y, m + 1, 1));
}
