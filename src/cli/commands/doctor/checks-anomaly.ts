// doctor's check of the agents `anomaly.agents` overrides name (issue 90). The config's loader
// refuses a name a typo away from a config agent's and takes the rest, since the store may hold it
// (config/schema/anomaly-names.ts); here the store is opened as a command opens it, and a name in
// neither is said: that override applies to nobody. A warning, not a failure: an operator may write
// an override before adding the agent, and a child named there may not be minted yet.

import { AGENT_PREFIX } from '../../../credentials/agent-record.ts';
import { openServices } from '../../../open-home.ts';
import type { CheckResult, Context } from './context.ts';

export const ANOMALY_NAMES_CHECK = 'anomaly overrides name agents that exist';

export async function checkAnomalyNames(ctx: Context): Promise<CheckResult | undefined> {
  const named = Object.keys(ctx.config.anomaly.agents);
  if (named.length === 0) return undefined;
  let known: Set<string>;
  try {
    const services = await openServices({ home: ctx.config.home, configFile: ctx.args.string('config'), env: ctx.io.env, createOnFirstWrite: true });
    try {
      known = new Set([...Object.keys(ctx.config.agents), ...services.store.entries(AGENT_PREFIX).map(([id]) => id.slice(AGENT_PREFIX.length))]);
    } finally {
      services.store.close();
      await services.store.end?.();
    }
  } catch (err) {
    // The store check says why; this one cannot run without it.
    return { check: ANOMALY_NAMES_CHECK, status: 'skip', detail: `needs the store (${(err as Error).message})` };
  }
  const unknown = named.filter((name) => !known.has(name));
  if (unknown.length === 0) return { check: ANOMALY_NAMES_CHECK, status: 'ok', detail: `${named.length} override${named.length === 1 ? '' : 's'} checked` };
  return {
    check: ANOMALY_NAMES_CHECK,
    status: 'warn',
    detail: `in neither the config nor the store, so these overrides apply to nobody: ${unknown.map((n) => `anomaly.agents.${n}`).join(', ')}`,
    fix: 'correct the name in anomaly.agents, or add the agent (keyway agents add, keyway agents delegate)',
  };
}
