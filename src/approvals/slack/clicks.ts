import type { AuditCode } from '../../errors/index.ts';
import { type AdmittedClick, DENY_VIEW, denyMetadata, readClick } from './click.ts';
import { bodyBinding } from './message.ts';
import { type SlackMessageRecord, slackRecordId } from './posting.ts';
import type { CallbackVia, RefusedCallback } from './refused.ts';
import type { RoomOptions } from './room.ts';
import { SeenClicks } from './seen.ts';

// The clicks on the room's messages (by Socket Mode or HTTP interactivity, both read by click.ts)
// turned into the desk's decisions. A click is taken only when, on top of what click.ts admits:
//   - its payload was not seen before (a replay, or a redelivered envelope, does nothing);
//   - the clicker's Slack user id is in approvals.slack.approvers (others get an ephemeral refusal);
//   - it is on the message keyway posted for that approval (the channel and ts of its record);
//   - the button's body hash is the held request's: a yes is bound to that request's id and body;
//   - the approval is still pending (a double click finds it decided: nothing more happens).
// Every refusal is an audit line (the room's, refused.ts), bounded against a flood of forged callbacks.

/** What the clicks need of the room that posted the messages. */
export interface ClickRoom {
  /** Resolves when the room's scan under way is done (a message being posted is then written). */
  settled(): Promise<void>;
  /** A decision was made: the room updates the message. */
  storeChanged(): void;
  /** A refused callback's audit line. */
  refused(refused: RefusedCallback, via: CallbackVia): void;
}

export class SlackClicks {
  readonly #o: RoomOptions;
  readonly #room: ClickRoom;
  readonly #seen = new SeenClicks();

  constructor(options: RoomOptions, room: ClickRoom) {
    this.#o = options;
    this.#room = room;
  }

  /**
   * A callback's payload, from Socket Mode or HTTP interactivity (already verified as Slack's).
   * Returns why it was refused, or undefined when taken. Each refusal (a replay included) is an
   * audit line (refused.ts), and the clicker is told why in an ephemeral message where they can be.
   */
  async click(payload: unknown, via: CallbackVia): Promise<string | undefined> {
    const settings = this.#o.settings();
    if (settings === undefined) return 'Slack approvals are not configured';
    const read = readClick(payload, settings.channel);
    if (!read.ok) {
      this.#o.logger.warn({ slack_user: read.user, reason: read.reason }, 'Slack approvals: a callback was refused');
      this.#room.refused({ code: 'bad_request', reason: read.reason, user: read.user }, via);
      return read.reason;
    }
    const click = read.click;
    const audited = (code: AuditCode, reason: string) => this.#room.refused({ code, reason, user: click.user, approval: click.approvalId }, via);
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
    this.#room.storeChanged();
    return undefined;
  }

  /**
   * A click can come as soon as Slack shows the message, before its poster wrote where it is: wait
   * for the posting (ours, or another replica's) to be written, a little.
   */
  async #postingDone(approvalId: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const message = this.#o.store.get<SlackMessageRecord>(slackRecordId(approvalId));
      if (message === undefined || message.ts !== undefined) return;
      await this.#room.settled();
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
