import type { StoreDraft } from '../../credentials/store/draft.ts';

// approvals.slack.max_messages_per_minute, for every process and replica on the store at once: the
// minute's posts and the one summary message are a store record (`slack-flood`), read and written
// under the store's lock, as each approval's message is (room.ts). So two keyways on one store post
// at most the bound between them, and one summary counts what neither posted (approvals, anomaly
// holds among them, and unusual-use alerts), updated in place by whichever sees the count change.

export const FLOOD_RECORD = 'slack-flood';
const MINUTE_MS = 60_000;
/** A summary claimed and not posted this long (its poster died): claimable again. */
const STALE_SUMMARY_MS = 60_000;

export interface FloodCount {
  approvals: number;
  alerts: number;
}

export interface FloodRecord {
  /** When each message of the last minute was posted (epoch ms), oldest first. */
  posted: number[];
  /** The summary message: where it is (absent while being posted) and what it counts. */
  summary?: { channel?: string | undefined; ts?: string | undefined; approvals: number; alerts: number; claimed_at: number } | undefined;
}

function read(draft: Pick<StoreDraft, 'get'>): FloodRecord {
  const record = draft.get<FloodRecord>(FLOOD_RECORD);
  return { posted: Array.isArray(record?.posted) ? record.posted : [], ...(record?.summary ? { summary: record.summary } : {}) };
}

/** Under the store's lock: one more message in the minute, counted now, or false past the bound. */
export function takePostSlot(draft: StoreDraft, nowMs: number, perMinute: number): boolean {
  const record = read(draft);
  const posted = record.posted.filter((at) => at > nowMs - MINUTE_MS && at <= nowMs + MINUTE_MS);
  if (posted.length >= perMinute) return false;
  draft.set(FLOOD_RECORD, { ...record, posted: [...posted, nowMs] } satisfies FloodRecord);
  return true;
}

/** What the summary shows now (0 and 0 when there is none). */
export function shownCount(store: { get<T>(id: string): T | undefined }): FloodCount {
  const summary = store.get<FloodRecord>(FLOOD_RECORD)?.summary;
  return { approvals: summary?.approvals ?? 0, alerts: summary?.alerts ?? 0 };
}

export type SummaryClaim =
  | { kind: 'none' }
  /** Post a new summary message. */
  | { kind: 'post'; count: FloodCount }
  /** Update the summary message in place (and, at a count of 0, let it go after). */
  | { kind: 'update'; count: FloodCount; channel: string; ts: string; before: NonNullable<FloodRecord['summary']> };

/**
 * Under the store's lock: whether this process is the one to show what waits unposted (`waiting`,
 * counted from the same draft, so two replicas whose own views lag each other agree), claiming it
 * by writing the count first (another replica seeing the same count then does nothing). A summary
 * being posted by another process is left to it. Returns the count claimed with the claim.
 */
export function claimSummary(draft: StoreDraft, waiting: FloodCount, nowMs: number, perMinute: number): SummaryClaim {
  const record = read(draft);
  // What waits unposted counts only once the minute is full: before that, a room posts it.
  const full = record.posted.filter((at) => at > nowMs - MINUTE_MS).length >= perMinute;
  const want = full ? waiting : { approvals: 0, alerts: 0 };
  const s = record.summary;
  const shown = { approvals: s?.approvals ?? 0, alerts: s?.alerts ?? 0 };
  if (shown.approvals === want.approvals && shown.alerts === want.alerts) return { kind: 'none' };
  if (s !== undefined && s.ts === undefined && s.claimed_at + STALE_SUMMARY_MS > nowMs) return { kind: 'none' };
  if (s?.ts !== undefined && s.channel !== undefined) {
    draft.set(FLOOD_RECORD, { ...record, summary: { ...s, ...want, claimed_at: nowMs } } satisfies FloodRecord);
    return { kind: 'update', count: want, channel: s.channel, ts: s.ts, before: s };
  }
  if (want.approvals === 0 && want.alerts === 0) {
    draft.set(FLOOD_RECORD, { posted: record.posted } satisfies FloodRecord);
    return { kind: 'none' };
  }
  draft.set(FLOOD_RECORD, { ...record, summary: { ...want, claimed_at: nowMs } } satisfies FloodRecord);
  return { kind: 'post', count: want };
}

/** After the summary was posted: where it is. */
export function summaryPosted(draft: StoreDraft, channel: string, ts: string): void {
  const record = read(draft);
  if (record.summary === undefined) return;
  draft.set(FLOOD_RECORD, { ...record, summary: { ...record.summary, channel, ts } } satisfies FloodRecord);
}

/** After the summary showed 0: the next flood starts a new message. */
export function summaryDone(draft: StoreDraft, ts: string): void {
  const record = read(draft);
  if (record.summary?.ts !== ts || record.summary.approvals !== 0 || record.summary.alerts !== 0) return;
  draft.set(FLOOD_RECORD, { posted: record.posted } satisfies FloodRecord);
}

/** Slack failed: the claim is undone (the previous count, or no summary), to be tried again. */
export function summaryFailed(draft: StoreDraft, claim: SummaryClaim): void {
  const record = read(draft);
  if (claim.kind === 'update') draft.set(FLOOD_RECORD, { ...record, summary: claim.before } satisfies FloodRecord);
  else if (claim.kind === 'post') draft.set(FLOOD_RECORD, { posted: record.posted } satisfies FloodRecord);
}
