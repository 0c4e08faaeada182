import { closestName } from '../../edit-distance.ts';

// The agents `anomaly.agents` overrides name, against the config's. An override may name an agent
// of the store (`keyway agents add`, a delegated child), which the config cannot see: as budgets and
// identities' map rules do (spend-names.ts, config.ts), a name the config lacks is taken unless it
// is a typo's distance from one it has (`ci-bto` beside `ci-bot`): that override would loosen or
// tighten nobody, and the agent it was meant for would be judged by the top level unsaid. A child
// needs no override of its own (it reads its nearest ancestor's), so one naming a child is rare.

interface Named {
  readonly agents: Readonly<Record<string, unknown>>;
  readonly anomaly: { readonly agents: Readonly<Record<string, unknown>> };
}

export function checkAnomalyAgentNames(config: Named, fail: (path: (string | number)[], message: string) => void): void {
  for (const name of Object.keys(config.anomaly.agents)) {
    if (Object.hasOwn(config.agents, name)) continue;
    const near = closestName(name, Object.keys(config.agents));
    if (near === undefined) continue;
    fail(
      ['anomaly', 'agents', name],
      `no agent "${name}" in the config; did you mean ${near}? (an agent of the store needs an id no typo away from a config agent's)`,
    );
  }
}
