import { burstWhy, freshBurst, rollBurst } from './burst.ts';
import { offHoursWhy } from './hours.ts';
import { type AnomalyRecord, classKey, type Seen, taughtHours } from './record.ts';
import type { AnomalySettings, Signal } from './settings.ts';

/**
 * The signals a request raises against the agent's own history: deterministic, each with why.
 * `pending`: requests this process admitted in the current window and has not yet stored.
 * A first use of a grant is named alone (its host and method are new by definition).
 */
export function judge(record: AnomalyRecord | undefined, seen: Seen, settings: AnomalySettings, now: Date, pending: number): Signal[] {
  const signals: Signal[] = [];
  const history = record?.grants[seen.grant];
  if (history === undefined) {
    if (settings.first_use) signals.push({ name: 'first_use', why: `first use of grant ${seen.grant} by this agent` });
  } else {
    if (settings.new_host && !history.classes.includes(classKey(seen))) {
      const knownHost = history.classes.some((c) => c.startsWith(`${seen.host} `));
      signals.push({
        name: 'new_host',
        why: knownHost ? `path class ${seen.pathClass} on ${seen.host} never called before` : `host ${seen.host} never called on grant ${seen.grant}`,
      });
    }
    if (settings.new_method && !history.methods.includes(seen.method))
      signals.push({ name: 'new_method', why: `method ${seen.method} never used on grant ${seen.grant}` });
  }
  if (settings.burst !== undefined) {
    const perMs = settings.burst.perMs;
    const state = rollBurst(record?.burst ?? freshBurst(now.getTime(), perMs), now.getTime(), perMs);
    const why = burstWhy(state, pending, settings.burst);
    if (why !== undefined) signals.push({ name: 'burst', why });
  }
  if (settings.off_hours !== undefined) {
    const why = offHoursWhy(now, settings.off_hours, taughtHours(record, settings.off_hours.tz));
    if (why !== undefined) signals.push({ name: 'off_hours', why });
  }
  return signals;
}
