import type { AnomalyConfig, AnomalySignalsConfig } from '../../config/schema/anomaly.ts';
import type { AnomalySettings } from './settings.ts';

/**
 * The settings for one agent: the top level, then its override (agents.NAME) key by key. A delegated
 * agent with no override of its own reads its nearest ancestor's (`chain`, root first).
 */
export function settingsFor(config: AnomalyConfig, agent: string, chain: readonly string[] = []): AnomalySettings {
  const names = [agent, ...[...chain].reverse()];
  const override = names.map((n) => config.agents[n]).find((o) => o !== undefined);
  const signals: AnomalySignalsConfig = { ...config.signals, ...override?.signals };
  const burst = signals.burst === undefined ? { per: 60_000, factor: 5 } : signals.burst;
  const off = signals.off_hours;
  return {
    mode: override?.mode ?? config.mode,
    first_use: signals.first_use ?? true,
    new_host: signals.new_host ?? true,
    new_method: signals.new_method ?? true,
    burst: burst === false ? undefined : { perMs: burst.per, factor: burst.factor },
    off_hours: off === undefined || off === false ? undefined : { from: off.hours.from, to: off.hours.to, days: off.days, tz: off.tz },
  };
}
