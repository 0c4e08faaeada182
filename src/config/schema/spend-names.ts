import { closestName } from '../../edit-distance.ts';
import type { BudgetConfig } from '../spend.ts';

// The agents and grants a budget names, against the config's. Either may live in the store only
// (`keyway agents add`, `keyway grants add`), which the config cannot see: as identities' map
// rules do for agents (config.ts), a name the config lacks is taken unless it is a typo's distance
// from one the config has (`agent: ci-bto` beside `ci-bot`): that budget would count nobody, and
// nothing would say so until the bill came. `keyway doctor` checks the rest against the store.

interface Named {
  readonly agents: Readonly<Record<string, unknown>>;
  readonly grants: Readonly<Record<string, unknown>>;
  readonly budgets: readonly BudgetConfig[];
}

export function checkBudgetNames(config: Named, fail: (path: (string | number)[], message: string) => void): void {
  config.budgets.forEach((budget, i) => {
    for (const [key, known] of [
      ['agent', config.agents],
      ['grant', config.grants],
    ] as const) {
      const name = budget[key];
      if (name === undefined || name === '*' || Object.hasOwn(known, name)) continue;
      const near = closestName(name, Object.keys(known));
      if (near === undefined) continue;
      fail(
        ['budgets', i, key],
        `no ${key} "${name}" in the config; did you mean ${near}? (${key === 'agent' ? 'an' : 'a'} ${key} of the store needs an id no typo away from a config ${key}'s)`,
      );
    }
  });
}
