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

type BudgetScope = { agent: string | null; grant: string; end_user: string | null; ancestors?: readonly string[] | undefined };

/**
 * The value a budget counts `scope` under, or undefined when the budget does not apply to it. Each
 * selector given must match (`*` matches any present value, never an absent one: `end_user: "*"`
 * does not count requests no identity token vouched for); none given counts all model traffic.
 * For a delegated agent's scope, the first of scopeValuesOf's values.
 */
export function scopeValueOf(budget: BudgetConfig, scope: BudgetScope): string | undefined {
  const ancestors = scope.ancestors;
  if (ancestors === undefined || ancestors.length === 0) return valueFor(budget, scope, scope.agent);
  return scopeValuesOf(budget, scope)[0];
}

/**
 * Every value a budget counts `scope` under (none: it does not apply). A root agent's scope has at
 * most one. A delegated agent's spend counts for it and for each ancestor (issue 89): a budget
 * naming an ancestor applies, once; an `agent: "*"` budget counts it under the agent and under
 * each ancestor apart, so each one's count holds its own spend and its descendants'.
 */
export function scopeValuesOf(budget: BudgetConfig, scope: BudgetScope): readonly string[] {
  const ancestors = scope.ancestors;
  // A root agent's scope (nearly every answer): at most one value, and no array made unless a `*` gives one.
  if (ancestors === undefined || ancestors.length === 0) {
    const value = valueFor(budget, scope, scope.agent);
    return value === undefined ? NO_VALUES : value === '' ? ONE_EMPTY_VALUE : [value];
  }
  const agents = scope.agent === null ? [scope.agent] : [scope.agent, ...ancestors];
  const out: string[] = [];
  for (const agent of agents) {
    const value = valueFor(budget, scope, agent);
    if (value !== undefined && !out.includes(value)) out.push(value);
    // A budget that does not select on each agent apart has one count, whoever in the chain matched.
    if (value !== undefined && budget.agent !== '*') break;
  }
  return out;
}

const NO_VALUES: readonly string[] = Object.freeze([]);
const ONE_EMPTY_VALUE: readonly string[] = Object.freeze(['']);

function valueFor(budget: BudgetConfig, scope: BudgetScope, agent: string | null): string | undefined {
  const parts: string[] = [];
  for (const name of SELECTORS) {
    const wanted = budget[name];
    if (wanted === undefined) continue;
    const have = name === 'agent' ? agent : scope[name];
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
