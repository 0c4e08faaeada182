import { APPROVAL_ID } from '../record.ts';

// What a Slack callback may be, before anything acts on it. keyway admits a `block_actions`
// payload only, from a click on one of its own three buttons:
//   - exactly one action, a button, whose action_id is keyway.approve_once, keyway.approve_window or keyway.deny;
//   - its value `ap_…:` and the held body's full SHA-256 (64 hex), as keyway wrote it on the button;
//   - from a message in the configured channel (container.channel_id and message_ts);
//   - by a user id of Slack's form, and with an action_ts (what makes each click one of a kind).
// And a `view_submission` of keyway's Deny modal (callback_id keyway.deny_reason) only, which
// carries in its private_metadata the approval, body hash, channel and message ts its Deny
// button had, and the reason typed (at most 2,000 characters; the desk keeps 200 of one line).
// Everything else (other views, shortcuts, other buttons, several actions, a value of another
// form) is refused with a reason and changes nothing. Whether the clicker is a mapped approver, the
// message the one keyway posted for that approval, and the hash the held body's, is the room's to
// check (clicks.ts), against the store.

export const ACTIONS = { once: 'keyway.approve_once', window: 'keyway.approve_window', deny: 'keyway.deny' } as const;
export type ClickAction = keyof typeof ACTIONS;

export interface AdmittedClick {
  action: ClickAction;
  approvalId: string;
  bodySha256: string;
  user: string;
  channel: string;
  messageTs: string;
  /** One click, one key: a replay of the same payload has the same. */
  key: string;
  /** A Deny click's trigger, to open the modal that asks for a reason. */
  trigger?: string | undefined;
  /** From the Deny modal: the reason typed (empty: none given). */
  reason?: string | undefined;
}

export const DENY_VIEW = 'keyway.deny_reason';
const METADATA = /^(ap_[a-z2-9]{12}):([0-9a-f]{64}):([CGD][A-Z0-9]{2,20}):(\d{1,12}\.\d{1,9})$/;

/** What the Deny modal carries of the click that opened it. */
export function denyMetadata(click: AdmittedClick): string {
  return `${click.approvalId}:${click.bodySha256}:${click.channel}:${click.messageTs}`;
}

export type ClickReading = { ok: true; click: AdmittedClick } | { ok: false; reason: string; user?: string | undefined; channel?: string | undefined };

const USER_ID = /^[UW][A-Z0-9]{2,20}$/;
const TS = /^\d{1,12}\.\d{1,9}$/;

export function readClick(payload: unknown, channel: string): ClickReading {
  if (isObject(payload) && payload['type'] === 'view_submission') return readDenyView(payload, channel);
  if (!isObject(payload) || payload['type'] !== 'block_actions') return { ok: false, reason: 'not a block_actions payload' };
  const user = isObject(payload['user']) && typeof payload['user']['id'] === 'string' ? payload['user']['id'] : undefined;
  if (user === undefined || !USER_ID.test(user)) return { ok: false, reason: 'no Slack user id' };
  const container = isObject(payload['container']) ? payload['container'] : {};
  const where = typeof container['channel_id'] === 'string' ? container['channel_id'] : undefined;
  if (where !== channel) return { ok: false, reason: 'not a message in the approvals channel', user, channel: where };
  const messageTs = container['message_ts'];
  if (typeof messageTs !== 'string' || !TS.test(messageTs)) return { ok: false, reason: 'no message ts', user, channel: where };
  const actions = payload['actions'];
  if (!Array.isArray(actions) || actions.length !== 1 || !isObject(actions[0])) return { ok: false, reason: 'not exactly one action', user, channel: where };
  const act = actions[0];
  const action = (Object.keys(ACTIONS) as ClickAction[]).find((k) => ACTIONS[k] === act['action_id']);
  if (act['type'] !== 'button' || action === undefined) return { ok: false, reason: 'not one of keyway’s buttons', user, channel: where };
  const value = typeof act['value'] === 'string' ? /^(ap_[a-z2-9]{12}):([0-9a-f]{64})$/.exec(act['value']) : null;
  if (value === null || !APPROVAL_ID.test(value[1]!)) return { ok: false, reason: 'the button names no approval and body', user, channel: where };
  const actionTs = act['action_ts'];
  if (typeof actionTs !== 'string' || actionTs === '') return { ok: false, reason: 'no action_ts', user, channel: where };
  return {
    ok: true,
    click: {
      action,
      approvalId: value[1]!,
      bodySha256: value[2]!,
      user,
      channel: where,
      messageTs,
      key: `${user}|${messageTs}|${actionTs}|${act['action_id']}`,
      ...(typeof payload['trigger_id'] === 'string' && payload['trigger_id'].length <= 200 ? { trigger: payload['trigger_id'] } : {}),
    },
  };
}

function readDenyView(payload: Record<string, unknown>, channel: string): ClickReading {
  const user = isObject(payload['user']) && typeof payload['user']['id'] === 'string' ? payload['user']['id'] : undefined;
  if (user === undefined || !USER_ID.test(user)) return { ok: false, reason: 'no Slack user id' };
  const view = isObject(payload['view']) ? payload['view'] : {};
  if (view['callback_id'] !== DENY_VIEW) return { ok: false, reason: 'not keyway’s Deny view', user };
  const meta = typeof view['private_metadata'] === 'string' ? METADATA.exec(view['private_metadata']) : null;
  if (meta === null || meta[3] !== channel) return { ok: false, reason: 'the view names no approval of the approvals channel', user };
  const viewId = view['id'];
  if (typeof viewId !== 'string' || viewId === '' || viewId.length > 100) return { ok: false, reason: 'no view id', user };
  const state = isObject(view['state']) && isObject(view['state']['values']) ? view['state']['values'] : {};
  const input = isObject(state['reason']) && isObject(state['reason']['reason']) ? state['reason']['reason'] : {};
  const typed = input['value'] ?? '';
  if (typeof typed !== 'string' || typed.length > 2_000) return { ok: false, reason: 'the reason is not text of at most 2,000 characters', user };
  return {
    ok: true,
    click: { action: 'deny', approvalId: meta[1]!, bodySha256: meta[2]!, user, channel, messageTs: meta[4]!, key: `${user}|view|${viewId}`, reason: typed },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
