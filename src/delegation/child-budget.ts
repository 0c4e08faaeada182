import type { BudgetConfig } from '../config/spend.ts';
import { budgetSchema } from '../config/schema/spend.ts';
import { KeywayError } from '../errors/index.ts';

// A child's own spend budget (`keyway agents delegate … --budget usd=2/day`, the admin API's
// `budget`), issue 89. What it admits: one budget in the config's `budgets:` form without its
// selectors (`{limit: {usd|tokens}, per, warn_at?, over?}`, checked by the config's own schema), or
// the short form `usd=AMOUNT/PER` / `tokens=COUNT/PER`: a plain decimal amount (no sign, exponent,
// hex, spaces or units), PER one of hour, day, month. Anything else is a usage error naming it.
// It is stored in the child's record as the schema read it and applies as a budget on the child
// (`agent: CHILD`), named `agents.CHILD.budget`. It never lets the child spend past an ancestor's
// budget: those count the child's spend as well (spend/core/budgets.ts scopeValuesOf).

/** A child's budget as stored: the config's budget without its selectors or name. */
export interface StoredBudget {
  limit: { usd: number } | { tokens: number };
  per: 'hour' | 'day' | 'month';
  warn_at?: number | undefined;
  over: 'refuse' | 'approve';
}

const SHORT = /^(usd|tokens)=(\d+(?:\.\d+)?)\/(hour|day|month)$/;
const childBudgetSchema = budgetSchema.omit({ agent: true, grant: true, end_user: true });

/** `--budget` / `budget` checked (a short form, or the config's form); throws usage naming what is wrong. */
export function checkChildBudget(input: unknown, flag: string): StoredBudget {
  let form = input;
  if (typeof input === 'string') {
    const short = SHORT.exec(input);
    if (short === null) {
      throw new KeywayError('usage', `${flag} "${input}": expected usd=AMOUNT/PER or tokens=COUNT/PER, PER one of hour, day, month (usd=2/day)`);
    }
    form = { limit: { [short[1]!]: Number(short[2]) }, per: short[3] };
  }
  const parsed = childBudgetSchema.safeParse(form);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    throw new KeywayError('usage', `${flag}${path === '' ? '' : `.${path}`}: ${issue.message}`);
  }
  const b = parsed.data;
  return { limit: b.limit, per: b.per, ...(b.warn_at !== undefined ? { warn_at: b.warn_at } : {}), over: b.over };
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

/** `usd=2/day`, `tokens=100000/month`: how a listing shows a child's budget. */
export function budgetText(budget: Pick<BudgetConfig, 'limit' | 'per'>): string {
  return 'usd' in budget.limit ? `usd=${budget.limit.usd}/${budget.per}` : `tokens=${budget.limit.tokens}/${budget.per}`;
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
