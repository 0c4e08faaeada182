import type { Logger } from 'pino';
import type { StoreDraft } from '../../credentials/store/draft.ts';
import type { DecisionAsked, DecisionResult } from '../decide.ts';
import { APPROVAL_PREFIX, type ApprovalRecord, effectiveState } from '../record.ts';
import { type AdmittedClick, DENY_VIEW, denyMetadata, readClick } from './click.ts';
import { ALERT_PREFIX, ALERT_TTL_MS, type SlackAlertRecord } from './alerts.ts';
import { claimSummary, type FloodCount, shownCount, summaryDone, summaryFailed, summaryPosted, takePostSlot } from './flood.ts';
import { alertMessage, bodyBinding, endedMessage, pendingMessage, summaryMessage } from './message.ts';
import { SeenClicks } from './seen.ts';
import type { SlackWebApi } from './web-api.ts';
import { type CallbackVia, type RefusedCallback, RefusedCallbackLines, refusedCallbackEvent } from './refused.ts';
import type { AuditEvent } from '../../audit/event.ts';
import type { AuditCode } from '../../errors/index.ts';

// The approvals' Slack room: each pending approval posted once to the channel, its message updated
// in place when it ends (a click here, an answer on the dashboard or the CLI, an expiry), and the
// clicks (by Socket Mode or HTTP interactivity, both read by click.ts) turned into the desk's
// decisions. Which process posts is settled in the store: a `slack-message:<approval id>` record is
// claimed under the store's lock before posting, so one replica (or one worker's primary) posts an
// approval, and any of them can update it or take its clicks.
//
// A click is taken only when, on top of what click.ts admits:
//   - its payload was not seen before (a replay, or a redelivered envelope, does nothing);
//   - the clicker's Slack user id is in approvals.slack.approvers (others get an ephemeral refusal);
//   - it is on the message keyway posted for that approval (the channel and ts of its record);
//   - the button's body hash is the held request's: a yes is bound to that request's id and body;
//   - the approval is still pending (a double click finds it decided: nothing more happens).
// Every refusal is an audit line (refused.ts), bounded against a flood of forged callbacks.
// The minute's bound on posts and the one summary message are store records too (flood.ts), so
// replicas share them; anomaly alerts (alerts.ts) wait in the store and are posted, without
// buttons, within the same bound.
// Slack down: nothing is posted, the holds wait or expire as their rules say; nothing is approved.

export const SLACK_PREFIX = 'slack-message:';
const slackRecordId = (approvalId: string) => `${SLACK_PREFIX}${approvalId}`;

/** Where an approval's message is, and what it last showed. */
export interface SlackMessageRecord {
  approval: string;
  /** Set once posted; absent while a process is posting it. */
  channel?: string | undefined;
  ts?: string | undefined;
  claimed_at: string;
  /** The approval's state the message shows (`pending` until updated). */
  shows: string;
}

export interface RoomSettings {
  channel: string;
  approvers: Readonly<Record<string, string>>;
  max_messages_per_minute: number;
}

export interface RoomOptions {
  settings: () => RoomSettings | undefined;
  botToken: () => string;
  api: SlackWebApi;
  store: {
    get<T>(id: string): T | undefined;
    entries<T>(prefix: string): Array<[string, T]>;
    update<R>(fn: (draft: StoreDraft) => R | Promise<R>): Promise<R>;
  };
  desk: { get(id: string): ApprovalRecord | undefined; decide(id: string, asked: DecisionAsked): Promise<DecisionResult> };
  logger: Logger;
  now: () => Date;
  /** Where refused callbacks are audited (the audit writer); none in a test that does not read them. */
  audit?: { write(event: AuditEvent): Promise<void> } | undefined;
}

/** A claim not turned into a message this long (the process posting it died): claimable again. */
const STALE_CLAIM_MS = 60_000;
/** After Slack failed, no new post for this long (holds go on waiting meanwhile). */
const PAUSE_AFTER_FAILURE_MS = 5_000;
const SCAN_MS = 1_000;

export class SlackRoom {
  readonly #o: RoomOptions;
  readonly #seen = new SeenClicks();
  readonly #refusedLines: RefusedCallbackLines | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #pausedUntil = 0;

  constructor(options: RoomOptions) {
    this.#o = options;
    const audit = options.audit;
    this.#refusedLines = audit === undefined ? undefined : new RefusedCallbackLines((event) => audit.write(event), options.now);
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
    for (const [, alert] of this.#o.store.entries<SlackAlertRecord>(ALERT_PREFIX).sort(([, a], [, b]) => a.at.localeCompare(b.at))) {
      if (Date.parse(alert.at) + ALERT_TTL_MS <= now.getTime()) {
        await this.#o.store.update((draft) => void draft.delete(`${ALERT_PREFIX}${alert.id}`));
        continue;
      }
      if (alert.claimed_at !== undefined && alert.claimed_at + STALE_CLAIM_MS > now.getTime()) continue;
      if (full || this.#paused(now) || (await this.#postAlert(alert, settings, now)) === 'full') {
        full = true;
        unposted.alerts++;
      }
    }
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

  /** An anomaly alert (alerts.ts): claimed with a place in the minute, posted without buttons, then let go. */
  async #postAlert(alert: SlackAlertRecord, settings: RoomSettings, now: Date): Promise<'posted' | 'taken' | 'full' | 'failed'> {
    const id = `${ALERT_PREFIX}${alert.id}`;
    const claimed = await this.#o.store.update((draft) => {
      const current = draft.get<SlackAlertRecord>(id);
      if (current === undefined || (current.claimed_at !== undefined && current.claimed_at + STALE_CLAIM_MS > now.getTime())) return 'taken';
      if (!takePostSlot(draft, now.getTime(), settings.max_messages_per_minute)) return 'full';
      draft.set(id, { ...current, claimed_at: now.getTime() } satisfies SlackAlertRecord);
      return 'claimed';
    });
    if (claimed !== 'claimed') return claimed;
    try {
      await this.#o.api.call('chat.postMessage', this.#o.botToken(), { channel: settings.channel, ...alertMessage(alert) });
      await this.#o.store.update((draft) => void draft.delete(id));
      return 'posted';
    } catch (err) {
      this.#pause();
      await this.#o.store.update((draft) => {
        const current = draft.get<SlackAlertRecord>(id);
        if (current !== undefined) draft.set(id, { ...current, claimed_at: undefined });
      });
      this.#o.logger.warn({ agent: alert.agent, err: { message: (err as Error).message } }, 'Slack approvals: could not post an anomaly alert; retrying');
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
   * A callback's payload, from Socket Mode or HTTP interactivity (already verified as Slack's).
   * Returns why it was refused, or undefined when taken. Each refusal (a replay included) is an
   * audit line (refused.ts), and the clicker is told why in an ephemeral message where they can be.
   */
  async click(payload: unknown, via: CallbackVia = { kind: 'socket' }): Promise<string | undefined> {
    const settings = this.#o.settings();
    if (settings === undefined) return 'Slack approvals are not configured';
    const read = readClick(payload, settings.channel);
    if (!read.ok) {
      this.#o.logger.warn({ slack_user: read.user, reason: read.reason }, 'Slack approvals: a callback was refused');
      this.refused({ code: 'bad_request', reason: read.reason, user: read.user }, via);
      return read.reason;
    }
    const click = read.click;
    const audited = (code: AuditCode, reason: string) => this.refused({ code, reason, user: click.user, approval: click.approvalId }, via);
    if (!this.#seen.first(click.key, this.#o.now().getTime())) {
      audited('conflict', 'a payload already answered (a replay, or a redelivered envelope)');
      return 'a payload already answered';
    }
    const name = settings.approvers[click.user];
    if (name === undefined) {
      audited('admin_auth_failed', `Slack user ${click.user} is not one of approvals.slack.approvers`);
      await this.#refuse(click, 'you are not one of keyway’s approvers (approvals.slack.approvers): nothing was decided');
      return 'not a mapped approver';
    }
    await this.#postingDone(click.approvalId);
    const refusal = this.#bound(click);
    if (refusal !== undefined) {
      audited(refusal.startsWith('no approval') ? 'not_found' : 'conflict', refusal);
      await this.#refuse(click, `${refusal}: nothing was decided`);
      return refusal;
    }
    if (click.action === 'deny' && click.reason === undefined && click.trigger !== undefined && (await this.#askReason(click))) return undefined;
    const typed = click.reason?.trim();
    const result = await this.#o.desk.decide(click.approvalId, {
      approve: click.action !== 'deny',
      once: click.action === 'once',
      ...(click.action === 'deny' ? { reason: typed ? typed : `denied in Slack by ${name}` } : {}),
      by: `slack:${name}`,
      now: this.#o.now(),
    });
    if (!result.ok) {
      audited(result.code === 'usage' ? 'bad_request' : result.code, result.message);
      await this.#refuse(click, result.message);
      return result.message;
    }
    this.storeChanged();
    return undefined;
  }

  /** A refused callback's audit line (refused.ts): written in the background; a failed write is the writer's to report. */
  refused(refused: RefusedCallback, via: CallbackVia): void {
    this.#refusedLines?.add(refusedCallbackEvent(refused, via, this.#o.now()));
  }

  /**
   * A click can come as soon as Slack shows the message, before its poster wrote where it is: wait
   * for the posting (ours, or another replica's) to be written, a little.
   */
  async #postingDone(approvalId: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const message = this.#o.store.get<SlackMessageRecord>(slackRecordId(approvalId));
      if (message === undefined || message.ts !== undefined) return;
      await this.settled();
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Deny asks for a reason first, in a modal that carries the click's approval, body hash and
   * message; its submission is the decision (and is admitted as a click is). A modal Slack will not
   * open (an expired trigger, Slack down) leaves nothing half-done: the Deny is taken without one.
   */
  async #askReason(click: AdmittedClick): Promise<boolean> {
    if (this.#o.desk.get(click.approvalId)?.state !== 'pending') return false;
    try {
      await this.#o.api.call('views.open', this.#o.botToken(), { trigger_id: click.trigger, view: denyView(click) });
      return true;
    } catch (err) {
      this.#o.logger.warn(
        { approval: click.approvalId, err: { message: (err as Error).message } },
        'Slack approvals: the Deny modal did not open; denied without a reason',
      );
      return false;
    }
  }

  /** Whether the click is on keyway's message for that approval, with the held body's hash. */
  #bound(click: AdmittedClick): string | undefined {
    const message = this.#o.store.get<SlackMessageRecord>(slackRecordId(click.approvalId));
    if (message?.ts !== click.messageTs || message.channel !== click.channel) return 'that button is not on keyway’s message for this approval';
    const record = this.#o.desk.get(click.approvalId);
    if (record === undefined) return `no approval ${click.approvalId}`;
    if (bodyBinding(record) !== click.bodySha256) return 'that button was for another body';
    if (click.action === 'window' && record.window_ms === 0) return 'the rule gives no window: approve once';
    return undefined;
  }

  async #refuse(click: AdmittedClick, text: string): Promise<void> {
    this.#o.logger.warn({ slack_user: click.user, approval: click.approvalId, reason: text }, 'Slack approvals: a click was refused');
    try {
      await this.#o.api.call('chat.postEphemeral', this.#o.botToken(), { channel: click.channel, user: click.user, text: `keyway: ${text}` });
    } catch (err) {
      this.#o.logger.warn({ err: { message: (err as Error).message } }, 'Slack approvals: could not send a refusal');
    }
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
  let alerts = 0;
  for (const [, alert] of draft.entries<SlackAlertRecord>(ALERT_PREFIX)) {
    if (Date.parse(alert.at) + ALERT_TTL_MS <= now.getTime()) continue;
    if (alert.claimed_at === undefined || alert.claimed_at + STALE_CLAIM_MS <= now.getTime()) alerts++;
  }
  return { approvals, alerts };
}

/** The approvals channel, approvers and bound, from approvals.slack. */
export function roomSettings(
  slack: { channel: string; approvers: Record<string, string>; max_messages_per_minute: number } | undefined,
): RoomSettings | undefined {
  return slack === undefined ? undefined : { channel: slack.channel, approvers: slack.approvers, max_messages_per_minute: slack.max_messages_per_minute };
}

/** The Deny modal: a reason, optional, that the agent is told (the desk keeps 200 characters of one line). */
function denyView(click: AdmittedClick): Record<string, unknown> {
  const text = (t: string) => ({ type: 'plain_text', text: t });
  return {
    type: 'modal',
    callback_id: DENY_VIEW,
    private_metadata: denyMetadata(click),
    title: text('Deny the request'),
    submit: text('Deny'),
    close: text('Cancel'),
    blocks: [
      { type: 'section', text: text(`Approval ${click.approvalId}`) },
      {
        type: 'input',
        block_id: 'reason',
        optional: true,
        label: text('Reason (the agent is told)'),
        element: { type: 'plain_text_input', action_id: 'reason', max_length: 200 },
      },
    ],
  };
}

function shownState(state: ApprovalRecord['state']): ApprovalRecord['state'] {
  return state === 'used' ? 'approved' : state;
}
