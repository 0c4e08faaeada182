import { budgetSchema } from '../config/schema/spend.ts';
import { KeywayError } from '../errors/index.ts';
import type { StoredBudget } from './stored-budget.ts';

export type { StoredBudget };

// A child's own spend budget (`keyway agents delegate … --budget usd=2/day`, the admin API's
// `budget`), issue 89. What it admits: one budget in the config's `budgets:` form without its
// selectors (`{limit: {usd|tokens}, per, warn_at?, over?}`, checked by the config's own schema), or
// the short form `usd=AMOUNT/PER` / `tokens=COUNT/PER`: a plain decimal amount (no sign, exponent,
// hex, spaces or units), PER one of hour, day, month. Anything else is a usage error naming it.
// It is stored in the child's record as the schema read it and applies as a budget on the child
// (`agent: CHILD`), named `agents.CHILD.budget`. It never lets the child spend past an ancestor's
// budget: those count the child's spend as well (spend/core/budgets.ts scopeValuesOf).

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
