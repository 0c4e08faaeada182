// The budget record a count goes to, named exactly as spend/core/budgets.ts names it (keyway spend, the
// admin API and the dashboard read the same ids), made cheaply: add() and check() run once per
// metered answer and ask it of every budget.
import type { BudgetConfig } from '../../config/spend.ts';
import { type BudgetPer, budgetKey, periodOf } from '../core/budgets.ts';
import { budgetRecordId, hourOf, spendRecordId } from '../core/records.ts';

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

const HOUR_MS = 3_600_000;

/**
 * The `spend:` record ids of one UTC hour, by scope: add() runs per metered answer, and the id is
 * four encodeURIComponent'd parts and an ISO hour (~1-2 µs) while an agent's scopes repeat all hour.
 * Nested maps (agent, grant, end user, model), not one joined key: no value's text can make two
 * scopes share an id. Emptied when the hour changes, so it holds one hour's scopes at most (as the
 * ledger's pending counts do).
 */
export class SpendIds {
  #hour = Number.NaN;
  #hourText = '';
  #ids = new Map<string | null, Map<string | null, Map<string | null, Map<string | null, string>>>>();

  of(at: Date, agent: string | null, grant: string | null, endUser: string | null, model: string | null): string {
    const hour = Math.floor(at.getTime() / HOUR_MS);
    if (hour !== this.#hour) {
      this.#hour = hour;
      this.#hourText = hourOf(at);
      this.#ids = new Map();
    }
    const byGrant = getOrMake(this.#ids, agent);
    const byUser = getOrMake(byGrant, grant);
    let byModel = byUser.get(endUser);
    if (byModel === undefined) {
      byModel = new Map();
      byUser.set(endUser, byModel);
    }
    let id = byModel.get(model);
    if (id === undefined) {
      id = spendRecordId(this.#hourText, agent, grant, endUser, model);
      byModel.set(model, id);
    }
    return id;
  }
}

function getOrMake<K, V>(map: Map<K, Map<string | null, V>>, key: K): Map<string | null, V> {
  let inner = map.get(key);
  if (inner === undefined) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}
