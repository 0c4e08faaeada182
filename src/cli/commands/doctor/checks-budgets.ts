// doctor's check of the agents and grants `budgets:` names (issue 63). The config's loader takes a
// name it does not define, since the store may hold it (config/schema/spend-names.ts); here the
// store is opened as a command opens it, and a name in neither is said: that budget counts nobody,
// so the agent it was meant for spends unbounded. A warning, not a failure: an operator may write
// a budget before adding the agent.

import type { BudgetConfig } from '../../../config/spend.ts';
import { AGENT_PREFIX } from '../../../credentials/agent-record.ts';
import { GRANT_PREFIX } from '../../../credentials/grant-record.ts';
import { openServices } from '../../../open-home.ts';
import type { CheckResult, Context } from './context.ts';

export const BUDGET_NAMES_CHECK = 'budgets name agents and grants that exist';

/** The ids each kind has, wherever it was defined. */
export interface KnownIds {
  readonly agent: ReadonlySet<string>;
  readonly grant: ReadonlySet<string>;
}

/** `budgets[2].agent "nightly-etl"` for each agent or grant a budget names that `known` lacks (`*` names every one). */
export function unknownBudgetNames(budgets: readonly BudgetConfig[], known: KnownIds): string[] {
  return budgets.flatMap((budget) =>
    (['agent', 'grant'] as const).flatMap((key) => {
      const name = budget[key];
      return name === undefined || name === '*' || known[key].has(name) ? [] : [`${budget.name}.${key} "${name}"`];
    }),
  );
}

export async function checkBudgetNames(ctx: Context): Promise<CheckResult | undefined> {
  const naming = ctx.config.budgets.filter((b) => (b.agent !== undefined && b.agent !== '*') || (b.grant !== undefined && b.grant !== '*'));
  if (naming.length === 0) return undefined;
  let known: KnownIds;
  try {
    const services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
    try {
      const ids = (prefix: string, config: object) =>
        new Set([...Object.keys(config), ...services.store.entries(prefix).map(([id]) => id.slice(prefix.length))]);
      known = { agent: ids(AGENT_PREFIX, ctx.config.agents), grant: ids(GRANT_PREFIX, ctx.config.grants) };
    } finally {
      services.store.close();
      await services.store.end?.();
    }
  } catch (err) {
    // The store check above says why; this one cannot run without it.
    return { check: BUDGET_NAMES_CHECK, status: 'skip', detail: `needs the store (${(err as Error).message})` };
  }
  const unknown = unknownBudgetNames(naming, known);
  if (unknown.length === 0) return { check: BUDGET_NAMES_CHECK, status: 'ok', detail: `${naming.length} budget${naming.length === 1 ? '' : 's'} checked` };
  return {
    check: BUDGET_NAMES_CHECK,
    status: 'warn',
    detail: `in neither the config nor the store, so these budgets count nobody: ${unknown.join(', ')}`,
    fix: 'correct the name in budgets:, or add the agent or grant (keyway agents add, keyway grants add)',
  };
}
