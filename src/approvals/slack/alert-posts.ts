import type { StoreDraft } from '../../credentials/store/draft.ts';
import { ALERT_PREFIX, ALERT_TTL_MS, type SlackAlertRecord } from './alerts.ts';
import { takePostSlot } from './flood.ts';
import { alertMessage } from './message.ts';
import { type RoomPosting, type RoomSettings, STALE_CLAIM_MS } from './posting.ts';

// The anomaly alerts waiting in the store (alerts.ts), posted by the room's scan: oldest first, each
// claimed under the store's lock with a place in the minute's bound it shares with the approvals
// (flood.ts), posted without buttons, then deleted. One past its TTL is dropped unposted; one whose
// post failed is let go for the next scan (and the room pauses); past the bound they are counted
// for the summary, not tried.

/**
 * Posts what waits, unless the minute is `full` already (or becomes full here). Returns whether it
 * is full and how many alerts this scan left unposted for it.
 */
export async function postWaitingAlerts(room: RoomPosting, settings: RoomSettings, now: Date, full: boolean): Promise<{ full: boolean; unposted: number }> {
  let unposted = 0;
  for (const [, alert] of room.store.entries<SlackAlertRecord>(ALERT_PREFIX).sort(([, a], [, b]) => a.at.localeCompare(b.at))) {
    if (Date.parse(alert.at) + ALERT_TTL_MS <= now.getTime()) {
      await room.store.update((draft) => void draft.delete(`${ALERT_PREFIX}${alert.id}`));
      continue;
    }
    if (alert.claimed_at !== undefined && alert.claimed_at + STALE_CLAIM_MS > now.getTime()) continue;
    if (full || room.paused(now) || (await postAlert(room, alert, settings, now)) === 'full') {
      full = true;
      unposted++;
    }
  }
  return { full, unposted };
}

/** How many alerts wait for a place in the minute, as the store has it now (the summary's count). */
export function alertsWaiting(draft: StoreDraft, now: Date): number {
  let alerts = 0;
  for (const [, alert] of draft.entries<SlackAlertRecord>(ALERT_PREFIX)) {
    if (Date.parse(alert.at) + ALERT_TTL_MS <= now.getTime()) continue;
    if (alert.claimed_at === undefined || alert.claimed_at + STALE_CLAIM_MS <= now.getTime()) alerts++;
  }
  return alerts;
}

/** One alert: claimed with a place in the minute, posted without buttons, then let go. */
async function postAlert(room: RoomPosting, alert: SlackAlertRecord, settings: RoomSettings, now: Date): Promise<'posted' | 'taken' | 'full' | 'failed'> {
  const id = `${ALERT_PREFIX}${alert.id}`;
  const claimed = await room.store.update((draft) => {
    const current = draft.get<SlackAlertRecord>(id);
    if (current === undefined || (current.claimed_at !== undefined && current.claimed_at + STALE_CLAIM_MS > now.getTime())) return 'taken';
    if (!takePostSlot(draft, now.getTime(), settings.max_messages_per_minute)) return 'full';
    draft.set(id, { ...current, claimed_at: now.getTime() } satisfies SlackAlertRecord);
    return 'claimed';
  });
  if (claimed !== 'claimed') return claimed;
  try {
    await room.api.call('chat.postMessage', room.botToken(), { channel: settings.channel, ...alertMessage(alert) });
    await room.store.update((draft) => void draft.delete(id));
    return 'posted';
  } catch (err) {
    room.pause();
    await room.store.update((draft) => {
      const current = draft.get<SlackAlertRecord>(id);
      if (current !== undefined) draft.set(id, { ...current, claimed_at: undefined });
    });
    room.logger.warn({ agent: alert.agent, err: { message: (err as Error).message } }, 'Slack approvals: could not post an anomaly alert; retrying');
    return 'failed';
  }
}
