// The budget record a count goes to, named exactly as spend/budgets.ts names it (keyway spend, the
// admin API and the dashboard read the same ids), made cheaply: add() and check() run once per
// metered answer and ask it of every budget.
import type { BudgetConfig } from '../config/spend.ts';
import { type BudgetPer, budgetKey, periodOf } from '../spend/budgets.ts';
import { budgetRecordId } from '../spend/records.ts';

/** The periods of one instant, each formatted once however many budgets ask (add and check run per model request). */
export class Periods {
  readonly #at: Date;
  readonly #of = new Map<BudgetPer, string>();
  constructor(at: Date) {
    this.#at = at;
  }
  of(per: BudgetPer): string {
    let period = this.#of.get(per);
    if (period === undefined) {
      period = periodOf(per, this.#at);
      this.#of.set(per, period);
    }
    return period;
  }
}

/** budgetKey(budget, ''): what a budget's key starts with, whatever scope value it counts for (made once per budget). */
const keyPrefixes = new WeakMap<BudgetConfig, string>();

/** The budget record of `budget`'s count for `value` in the period `periods` is in. */
export function recordIdOf(budget: BudgetConfig, value: string, periods: Periods): string {
  let prefix = keyPrefixes.get(budget);
  if (prefix === undefined) {
    prefix = budgetKey(budget, '');
    keyPrefixes.set(budget, prefix);
  }
  // budgetKey ends with the scope value: the prefix plus the value is the key (test/unit/spend-ledger.test.ts holds them equal).
  return budgetRecordId(prefix + value, periods.of(budget.per));
}
