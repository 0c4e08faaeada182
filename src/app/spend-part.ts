import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { BudgetConfig } from '../config/spend.ts';
import type { Spending } from '../proxy/stages/views.ts';
import { limitOf, scopeValueOf, unitOf } from '../spend/core/budgets.ts';
import type { BudgetStanding, SpendLedgerApi, SpendScope } from '../spend/core/ledger.ts';
import { ModelNames, modelNameShape } from '../spend/core/model-name.ts';
import { costOf, fallbackPrice, priceFor } from '../spend/core/pricing.ts';
import type { ModelApi, UsageReading } from '../spend/core/usage.ts';

// The proxy's view of spend (proxy/stages/views.ts Spending), from the live config (pricing:, budgets:)
// and the ledger: prices looked up per answer, budgets asked only for a scope one applies to, and a
// budget past its warn_at announced through approvals.notify.
//
// Unknown is not free where a budget applies to the answer's scope (docs/spend.md, "Prices" and
// "No usage"): an answer that said nothing of its usage is counted at its estimate (its bytes as
// tokens), and under a budget in dollars a model with no price of its own is priced at the
// fallback. Without a budget neither is needed (nothing is enforced), and both stay flagged as
// before: unknown, or unpriced with its tokens counted.

export interface SpendPartOptions {
  config: () => Config;
  /** The budgets in force: the config's and each delegated agent's own (delegation/child-budget.ts); default the config's. */
  budgets?: (() => readonly BudgetConfig[]) | undefined;
  ledger: SpendLedgerApi;
  /** Posts a notification (approvals/notify.ts notifyPoster). */
  notify: (payload: Record<string, unknown>, about: Record<string, string>) => void;
  logger: Logger;
}

export function spendPart(options: SpendPartOptions): Spending['spend'] {
  const { config, ledger, notify, logger } = options;
  const budgetsNow = options.budgets ?? (() => config().budgets);
  // The distinct-name cap for this process's audit lines, metrics and ledger entries.
  const names = new ModelNames();
  return {
    costOf(reading: UsageReading, api: ModelApi, scope: SpendScope): number | null {
      let usage = reading.usage;
      if (usage === undefined) {
        if (reading.estimate === undefined || !budgetOn(budgetsNow(), scope, undefined)) return null;
        // Counted at its estimate: the reading is the meter's own, made for this answer.
        usage = reading.estimate;
        reading.usage = usage;
        reading.basis = 'estimated';
        reading.estimate = undefined;
      }
      const { pricing } = config();
      const budgets = budgetsNow();
      // Priced by its own name when it has a model name's shape (the cap does not change a price); else as `_other`.
      const price = priceFor(modelNameShape(usage.model), pricing);
      if (price !== undefined) return costOf(usage, price);
      if (!budgetOn(budgets, scope, 'usd')) return null;
      reading.price = 'fallback';
      return costOf(usage, fallbackPrice(api, pricing).price);
    },
    modelName: (agent, model, at) => names.name(agent, model, at),
    add: (entry) => ledger.add(entry),
    settled: () => ledger.settled(),
    budgeted: (scope: SpendScope): boolean => budgetOn(budgetsNow(), scope, undefined),
    check: (scope, now) => ledger.check(scope, now),
    warn(standing: BudgetStanding, scope: SpendScope | undefined): void {
      const { budget } = standing;
      const unit = unitOf(budget);
      logger.warn({ budget: budget.name, scope: standing.scope, used: standing.used, limit: limitOf(budget), unit }, 'a model budget passed its warn_at');
      notify(
        {
          type: 'keyway.budget.warning',
          budget: {
            name: budget.name,
            agent: budget.agent,
            grant: budget.grant,
            end_user: budget.end_user,
            per: budget.per,
            unit,
            limit: limitOf(budget),
            warn_at: budget.warn_at,
            over: budget.over,
          },
          scope: standing.scope,
          used: standing.used,
          resets_at: standing.resets_at.toISOString(),
          request: scope === undefined ? undefined : { agent: scope.agent, grant: scope.grant },
        },
        { budget: budget.name },
      );
    },
  };
}

/** Whether a budget (in `unit`, or in either) applies to `scope`. */
function budgetOn(budgets: readonly BudgetConfig[], scope: SpendScope, unit: 'usd' | 'tokens' | undefined): boolean {
  for (let i = 0; i < budgets.length; i++) {
    const budget = budgets[i]!;
    if ((unit === undefined || unitOf(budget) === unit) && scopeValueOf(budget, scope) !== undefined) return true;
  }
  return false;
}
