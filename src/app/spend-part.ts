import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { Spending } from '../proxy/runtime.ts';
import { limitOf, scopeValueOf, unitOf } from '../spend/budgets.ts';
import type { BudgetStanding, SpendLedgerApi, SpendScope } from '../spend/ledger.ts';
import { ModelNames, modelNameShape } from '../spend/model-name.ts';
import { costOf, priceFor } from '../spend/pricing.ts';
import type { UsageReading } from '../spend/usage.ts';

// The proxy's view of spend (proxy/runtime.ts Spending), from the live config (pricing:, budgets:)
// and the ledger: prices looked up per answer, budgets asked only for a scope one applies to, and a
// budget past its warn_at announced through approvals.notify.

export interface SpendPartOptions {
  config: () => Config;
  ledger: SpendLedgerApi;
  /** Posts a notification (approvals/notify.ts notifyPoster). */
  notify: (payload: Record<string, unknown>, about: Record<string, string>) => void;
  logger: Logger;
}

export function spendPart(options: SpendPartOptions): Spending['spend'] {
  const { config, ledger, notify, logger } = options;
  // The distinct-name cap for this process's audit lines, metrics and ledger entries.
  const names = new ModelNames();
  return {
    costOf(reading: UsageReading): number | null {
      const usage = reading.usage;
      if (usage === undefined) return null;
      // Priced by its own name when it has a model name's shape (the cap does not change a price); else as `_other`.
      const price = priceFor(modelNameShape(usage.model), config().pricing);
      return price === undefined ? null : costOf(usage, price);
    },
    modelName: (agent, model, at) => names.name(agent, model, at),
    add: (entry) => ledger.add(entry),
    settled: () => ledger.settled(),
    budgeted(scope: SpendScope): boolean {
      const budgets = config().budgets;
      for (let i = 0; i < budgets.length; i++) if (scopeValueOf(budgets[i]!, scope) !== undefined) return true;
      return false;
    },
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
