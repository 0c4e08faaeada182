import { randomUUID } from 'node:crypto';
import type { StoreDraft } from '../../credentials/store/draft.ts';

// anomaly `alert` in Slack. An alert is not a hold: nothing waits, nobody need answer, so it is a
// plain message without buttons ("keyway noticed: …"), not an approval. It is raised where the
// request is served (a worker, a replica) and posted by the process that runs the Slack room, so
// it goes through the store: a `slack-alert:<id>` record, which the room posts (within
// max_messages_per_minute, shared with the approvals: past it the summary counts alerts waiting)
// and deletes. Bounded three ways, since a burst alerts on every request while it lasts:
//   - per process, one alert a minute for one agent, grant and set of signals;
//   - at most MAX_WAITING records waiting in the store (past it, alerts are not kept for Slack);
//   - a record not posted within TTL_MS is dropped (Slack down, a flood): the audit line keeps
//     the signal either way, and approvals.notify gets every alert as before.
// The record holds what the alert payload holds: the path's class, never the path or its query.

export const ALERT_PREFIX = 'slack-alert:';
export const ALERT_TTL_MS = 10 * 60_000;
const MAX_WAITING = 100;
const ONCE_PER_MS = 60_000;

export interface SlackAlertRecord {
  id: string;
  at: string;
  agent: string;
  chain?: string[] | undefined;
  grant: string;
  method: string;
  host: string;
  path_class: string;
  signals: Array<{ name: string; why: string }>;
  /** Set while a room posts it (epoch ms); a claim older than a minute is taken again. */
  claimed_at?: number | undefined;
}

export interface AlertStore {
  update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R>;
}

/** What approvals.notify's alert payload carries (proxy/stages/anomaly.ts), read back defensively. */
function fromPayload(payload: Record<string, unknown>): Omit<SlackAlertRecord, 'id'> | undefined {
  const a = payload['alert'];
  if (typeof a !== 'object' || a === null) return undefined;
  const alert = a as Record<string, unknown>;
  const text = (k: string) => (typeof alert[k] === 'string' ? (alert[k] as string) : undefined);
  const signals = Array.isArray(alert['signals'])
    ? (alert['signals'] as Array<Record<string, unknown>>).flatMap((s) =>
        typeof s?.['name'] === 'string' && typeof s['why'] === 'string' ? [{ name: s['name'], why: s['why'] }] : [],
      )
    : [];
  const [agent, grant, method, host, pathClass, at] = ['agent', 'grant', 'method', 'host', 'path_class', 'at'].map(text);
  if (!agent || !grant || !method || !host || pathClass === undefined || !at || signals.length === 0) return undefined;
  const chain = Array.isArray(alert['chain']) ? (alert['chain'] as unknown[]).filter((c): c is string => typeof c === 'string') : undefined;
  return { at, agent, ...(chain && chain.length > 0 ? { chain } : {}), grant, method, host, path_class: pathClass, signals };
}

/**
 * The producer side: each alert kept for the room, bounded. Fire and forget (a failed store write
 * loses the Slack message only; the caller's `report` logs it without the alert's contents).
 */
export function slackAlertKeeper(store: AlertStore, now: () => Date, report: (err: Error) => void): (payload: Record<string, unknown>) => void {
  const last = new Map<string, number>();
  return (payload) => {
    const alert = fromPayload(payload);
    if (alert === undefined) return;
    const nowMs = now().getTime();
    const key = `${alert.agent}\n${alert.grant}\n${alert.signals.map((s) => s.name).join(',')}`;
    if ((last.get(key) ?? -Infinity) + ONCE_PER_MS > nowMs) return;
    last.set(key, nowMs);
    if (last.size > 1_000) for (const [k, at] of last) if (at + ONCE_PER_MS <= nowMs) last.delete(k);
    const id = randomUUID();
    store
      .update((draft) => {
        if (draft.entries(ALERT_PREFIX).length >= MAX_WAITING) return;
        draft.set(`${ALERT_PREFIX}${id}`, { id, ...alert } satisfies SlackAlertRecord);
      })
      .catch(report);
  };
}
