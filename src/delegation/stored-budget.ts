import type { BudgetConfig } from '../config/spend.ts';

// A child's own spend budget as the running keyway reads it (issue 89): from the child's record at
// each agent table build, with no schema loaded (a start loads none; child-budget.ts checks it at
// minting with the config's schema), and joined to the config's budgets.

/** A child's budget as stored: the config's budget without its selectors or name. */
export interface StoredBudget {
  limit: { usd: number } | { tokens: number };
  per: 'hour' | 'day' | 'month';
  warn_at?: number | undefined;
  over: 'refuse' | 'approve';
}

const isPositive = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;

/**
 * A stored budget as the agent table reads it at each build (no schema is loaded at start), named
 * for its child. A record edited by hand into something else: the agent is no agent (undefined
 * with `bad`), rather than one without the budget it was given.
 */
export function readStoredBudget(id: string, stored: unknown): { budget: BudgetConfig | undefined; bad: boolean } {
  if (stored === undefined) return { budget: undefined, bad: false };
  const s = stored as Partial<StoredBudget> | null;
  const limit = s?.limit as Record<string, unknown> | undefined;
  const usd = limit?.['usd'];
  const tokens = limit?.['tokens'];
  const limitOk =
    typeof limit === 'object' && limit !== null && Object.keys(limit).length === 1 && (isPositive(usd) || (isPositive(tokens) && Number.isSafeInteger(tokens)));
  const perOk = s?.per === 'hour' || s?.per === 'day' || s?.per === 'month';
  const warnOk = s?.warn_at === undefined || (typeof s.warn_at === 'number' && s.warn_at > 0 && s.warn_at < 1);
  const overOk = s?.over === 'refuse' || s?.over === 'approve';
  if (!limitOk || !perOk || !warnOk || !overOk) return { budget: undefined, bad: true };
  const budget: BudgetConfig = {
    name: `agents.${id}.budget`,
    agent: id,
    limit: isPositive(usd) ? { usd } : { tokens: tokens as number },
    per: s!.per!,
    ...(s!.warn_at !== undefined ? { warn_at: s!.warn_at } : {}),
    over: s!.over!,
  };
  return { budget, bad: false };
}

const inForce = new WeakMap<object, { config: readonly BudgetConfig[]; all: readonly BudgetConfig[] }>();

/**
 * The budgets in force: the config's, then each agent's own (a delegated agent's `--budget`), made
 * once per agent table and config (the ledger asks on every metered answer).
 */
export function budgetsInForce(
  config: readonly BudgetConfig[],
  agents: { list(): ReadonlyArray<{ readonly budget?: BudgetConfig | undefined }> },
): readonly BudgetConfig[] {
  const memo = inForce.get(agents);
  if (memo !== undefined && memo.config === config) return memo.all;
  const own = agents.list().flatMap((a) => (a.budget === undefined ? [] : [a.budget]));
  const all = own.length === 0 ? config : [...config, ...own];
  inForce.set(agents, { config, all });
  return all;
}
