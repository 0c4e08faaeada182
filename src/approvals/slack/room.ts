import type { Logger } from 'pino';
import type { AuditEvent } from '../../audit/event.ts';
import type { StoreDraft } from '../../credentials/store/draft.ts';
import type { DecisionAsked, DecisionResult } from '../decide.ts';
import { APPROVAL_PREFIX, type ApprovalRecord, effectiveState } from '../record.ts';
import { alertsWaiting, postWaitingAlerts } from './alert-posts.ts';
import { SlackClicks } from './clicks.ts';
import { claimSummary, type FloodCount, shownCount, summaryDone, summaryFailed, summaryPosted, takePostSlot } from './flood.ts';
import { endedMessage, pendingMessage, summaryMessage } from './message.ts';
import { type RoomPosting, type RoomSettings, type RoomStore, SLACK_PREFIX, type SlackMessageRecord, STALE_CLAIM_MS, slackRecordId } from './posting.ts';
import { type CallbackVia, type RefusedCallback, RefusedCallbackLines, refusedCallbackEvent } from './refused.ts';
import type { SlackWebApi } from './web-api.ts';

// The approvals' Slack room: each pending approval posted once to the channel, its message updated
// in place when it ends (a click here, an answer on the dashboard or the CLI, an expiry), and the
// clicks (clicks.ts) turned into the desk's decisions. Which process posts is settled in the store:
// a `slack-message:<approval id>` record (posting.ts) is claimed under the store's lock before
// posting, so one replica (or one worker's primary) posts an approval, and any of them can update it
// or take its clicks. Every refused callback is an audit line (refused.ts), bounded against a flood
// of forged callbacks. The minute's bound on posts and the one summary message are store records too
// (flood.ts), so replicas share them; anomaly alerts (alerts.ts) wait in the store and are posted
// (alert-posts.ts), without buttons, within the same bound.
// Slack down: nothing is posted, the holds wait or expire as their rules say; nothing is approved.

export interface RoomOptions {
  settings: () => RoomSettings | undefined;
  botToken: () => string;
  api: SlackWebApi;
  store: RoomStore;
  desk: { get(id: string): ApprovalRecord | undefined; decide(id: string, asked: DecisionAsked): Promise<DecisionResult> };
  logger: Logger;
  now: () => Date;
  /** Where refused callbacks are audited (the audit writer); none in a test that does not read them. */
  audit?: { write(event: AuditEvent): Promise<void> } | undefined;
}

/** After Slack failed, no new post for this long (holds go on waiting meanwhile). */
const PAUSE_AFTER_FAILURE_MS = 5_000;
const SCAN_MS = 1_000;

export class SlackRoom {
  readonly #o: RoomOptions;
  readonly #clicks: SlackClicks;
  readonly #posting: RoomPosting;
  readonly #refusedLines: RefusedCallbackLines | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #pausedUntil = 0;

  constructor(options: RoomOptions) {
    this.#o = options;
    const audit = options.audit;
    this.#refusedLines = audit === undefined ? undefined : new RefusedCallbackLines((event) => audit.write(event), options.now);
    this.#clicks = new SlackClicks(options, this);
    this.#posting = {
      api: options.api,
      botToken: options.botToken,
      store: options.store,
      logger: options.logger,
      pause: () => this.#pause(),
      paused: (now) => this.#paused(now),
    };
  }

  start(): void {
    this.#timer = setInterval(() => this.storeChanged(), SCAN_MS);
    this.#timer.unref();
    this.storeChanged();
  }

  stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#refusedLines?.flush();
    return this.#scanning ?? Promise.resolve();
  }

  /** Something changed: post what is new, update what ended (one scan at a time). */
  storeChanged(): void {
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#scanning = this.#scan()
      .catch((err: Error) => this.#o.logger.warn({ err: { message: err.message } }, 'Slack approvals: a scan failed'))
      .finally(() => {
        this.#scanning = undefined;
        if (this.#again) {
          this.#again = false;
          this.storeChanged();
        }
      });
  }

  /** Resolves when the scan under way (and any asked for meanwhile) is done: for tests and stop. */
  async settled(): Promise<void> {
    while (this.#scanning) await this.#scanning;
  }

  async #scan(): Promise<void> {
    const settings = this.#o.settings();
    if (settings === undefined) return;
    const now = this.#o.now();
    const messages = new Map(this.#o.store.entries<SlackMessageRecord>(SLACK_PREFIX).map(([, m]) => [m.approval, m]));
    const approvals = this.#o.store.entries<ApprovalRecord>(APPROVAL_PREFIX).map(([, r]) => r);
    // Slack failed a moment ago: nothing is sent until the pause ends (no retry storm, no log flood).
    if (now.getTime() < this.#pausedUntil) return;
    const unposted: FloodCount = { approvals: 0, alerts: 0 };
    // Past the minute's bound (every process's posts count: flood.ts), the rest are counted, not tried.
    let full = false;
    for (const record of approvals.sort((a, b) => a.asked_at.localeCompare(b.asked_at))) {
      // A yes for once spent by its request (used) reads as the yes it was: no second update.
      const state = shownState(effectiveState(record, now));
      const message = messages.get(record.id);
      if (state === 'pending') {
        if (message !== undefined && !(message.ts === undefined && Date.parse(message.claimed_at) + STALE_CLAIM_MS < now.getTime())) continue;
        if (full || this.#paused(now) || (await this.#post(record, settings, now)) === 'full') {
          full = true;
          unposted.approvals++;
        }
      } else if (message?.ts !== undefined && message.shows !== state) {
        await this.#update(record, message, state);
      }
    }
    const alerts = await postWaitingAlerts(this.#posting, settings, now, full);
    unposted.alerts = alerts.unposted;
    if (!this.#paused(now)) await this.#summarise(unposted, settings);
    await this.#prune(messages, new Set(approvals.map((r) => r.id)));
  }

  #paused(now: Date): boolean {
    return now.getTime() < this.#pausedUntil;
  }

  /** Claims the approval's message and a place in the minute (both under the store's lock), then posts. */
  async #post(record: ApprovalRecord, settings: RoomSettings, now: Date): Promise<'posted' | 'taken' | 'full' | 'failed'> {
    const id = slackRecordId(record.id);
    const claimed = await this.#o.store.update((draft) => {
      const existing = draft.get<SlackMessageRecord>(id);
      if (existing !== undefined && (existing.ts !== undefined || Date.parse(existing.claimed_at) + STALE_CLAIM_MS >= now.getTime())) return 'taken';
      if (!takePostSlot(draft, now.getTime(), settings.max_messages_per_minute)) return 'full';
      draft.set(id, { approval: record.id, claimed_at: now.toISOString(), shows: 'pending' } satisfies SlackMessageRecord);
      return 'claimed';
    });
    if (claimed !== 'claimed') return claimed;
    try {
      const answer = await this.#o.api.call('chat.postMessage', this.#o.botToken(), { channel: settings.channel, ...pendingMessage(record) });
      const channel = String(answer['channel']);
      const ts = String(answer['ts']);
      await this.#o.store.update((draft) => {
        draft.set(id, { approval: record.id, channel, ts, claimed_at: now.toISOString(), shows: 'pending' } satisfies SlackMessageRecord);
      });
      return 'posted';
    } catch (err) {
      this.#pause();
      await this.#o.store.update((draft) => void draft.delete(id));
      this.#o.logger.warn(
        { approval: record.id, err: { message: (err as Error).message } },
        'Slack approvals: could not post; the request waits as its rule says',
      );
      return 'failed';
    }
  }

  async #update(record: ApprovalRecord, message: SlackMessageRecord, state: string): Promise<void> {
    // Claimed under the lock first: two replicas seeing the same end update the message once.
    const mine = await this.#o.store.update((draft) => {
      const current = draft.get<SlackMessageRecord>(slackRecordId(record.id));
      if (current?.ts === undefined || current.shows === state) return false;
      draft.set(slackRecordId(record.id), { ...current, shows: state } satisfies SlackMessageRecord);
      return true;
    });
    if (!mine) return;
    const shown = shownState(record.state) === state ? record : { ...record, state: state as ApprovalRecord['state'] };
    try {
      await this.#o.api.call('chat.update', this.#o.botToken(), { channel: message.channel, ts: message.ts, ...endedMessage(shown) });
    } catch (err) {
      await this.#o.store.update((draft) => {
        const current = draft.get<SlackMessageRecord>(slackRecordId(record.id));
        if (current?.shows === state) draft.set(slackRecordId(record.id), { ...current, shows: message.shows });
      });
      this.#pause();
      this.#o.logger.warn({ approval: record.id, err: { message: (err as Error).message } }, 'Slack approvals: could not update a message; retrying');
    }
  }

  #pause(): void {
    this.#pausedUntil = this.#o.now().getTime() + PAUSE_AFTER_FAILURE_MS;
  }

  /**
   * Past max_messages_per_minute: one message counts what no process posted, updated in place
   * (flood.ts). `count` is this scan's view, which only says whether to look: what is shown is
   * counted again under the store's lock.
   */
  async #summarise(count: FloodCount, settings: RoomSettings): Promise<void> {
    const before = shownCount(this.#o.store);
    if (before.approvals === count.approvals && before.alerts === count.alerts) return;
    const now = this.#o.now();
    const claim = await this.#o.store.update((draft) => claimSummary(draft, waitingUnposted(draft, now), now.getTime(), settings.max_messages_per_minute));
    if (claim.kind === 'none') return;
    const shown = claim.count;
    const token = this.#o.botToken();
    try {
      if (claim.kind === 'post') {
        const answer = await this.#o.api.call('chat.postMessage', token, { channel: settings.channel, ...summaryMessage(shown) });
        await this.#o.store.update((draft) => summaryPosted(draft, String(answer['channel']), String(answer['ts'])));
      } else {
        await this.#o.api.call('chat.update', token, { channel: claim.channel, ts: claim.ts, ...summaryMessage(shown) });
        if (shown.approvals === 0 && shown.alerts === 0) await this.#o.store.update((draft) => summaryDone(draft, claim.ts));
      }
    } catch (err) {
      await this.#o.store.update((draft) => summaryFailed(draft, claim));
      this.#pause();
      this.#o.logger.warn({ err: { message: (err as Error).message } }, 'Slack approvals: could not post the summary');
    }
  }

  /** Message records whose approval was pruned (a day after it ended) go too. */
  async #prune(messages: Map<string, SlackMessageRecord>, live: Set<string>): Promise<void> {
    const gone = [...messages.keys()].filter((id) => !live.has(id));
    if (gone.length === 0) return;
    await this.#o.store.update((draft) => {
      for (const id of gone) draft.delete(slackRecordId(id));
    });
  }

  /**
   * A callback's payload, from Socket Mode or HTTP interactivity (already verified as Slack's),
   * taken by clicks.ts. Returns why it was refused, or undefined when taken.
   */
  click(payload: unknown, via: CallbackVia = { kind: 'socket' }): Promise<string | undefined> {
    return this.#clicks.click(payload, via);
  }

  /** A refused callback's audit line (refused.ts): written in the background; a failed write is the writer's to report. */
  refused(refused: RefusedCallback, via: CallbackVia): void {
    this.#refusedLines?.add(refusedCallbackEvent(refused, via, this.#o.now()));
  }
}

/** What waits for a place in the minute, as the store has it now: approvals without a message, alerts not being posted. */
function waitingUnposted(draft: StoreDraft, now: Date): FloodCount {
  const messages = new Map(draft.entries<SlackMessageRecord>(SLACK_PREFIX).map(([, m]) => [m.approval, m]));
  let approvals = 0;
  for (const [, record] of draft.entries<ApprovalRecord>(APPROVAL_PREFIX)) {
    if (effectiveState(record, now) !== 'pending') continue;
    const message = messages.get(record.id);
    if (message === undefined || (message.ts === undefined && Date.parse(message.claimed_at) + STALE_CLAIM_MS < now.getTime())) approvals++;
  }
  return { approvals, alerts: alertsWaiting(draft, now) };
}

function shownState(state: ApprovalRecord['state']): ApprovalRecord['state'] {
  return state === 'used' ? 'approved' : state;
}
