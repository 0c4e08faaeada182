// What a Slack callback admits before anything acts on it (issue 90): the v0 signature over the
// timestamp and the exact raw body, within 5 minutes; a block_actions click on one of keyway's
// buttons in the approvals channel, naming an approval and a body hash. And approvals.slack's
// config: secrets by reference only, channel and user ids, Socket Mode's app token.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readClick } from '../../src/approvals/slack/click.ts';
import { checkSlackSignature } from '../../src/approvals/slack/signature.ts';
import { parseConfig } from '../../src/config/load.ts';
import { thrownMessage } from '../helpers/thrown.ts';

const SECRET = 'signing-secret';
const sign = (ts: string, body: string, secret = SECRET) => `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;

describe('the v0 signature', () => {
  const now = 1_800_000_000_000;
  const ts = String(now / 1000);
  const body = Buffer.from('payload=%7B%7D');
  const check = (headers: { timestamp?: string; signature?: string }, raw = body, at = now) =>
    checkSlackSignature(SECRET, { timestamp: headers.timestamp, signature: headers.signature }, raw, at);

  it('admits the exact body signed with the secret, within 5 minutes either way', () => {
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()) })).toEqual({ ok: true });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()) }, body, now + 299_000)).toEqual({ ok: true });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()) }, body, now - 299_000)).toEqual({ ok: true });
  });

  it('refuses another secret, another body, a stale or future timestamp, a missing or malformed header', () => {
    expect(check({ timestamp: ts, signature: sign(ts, body.toString(), 'other') })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('does not match'),
    });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()) }, Buffer.from('payload=%7B%7D&x=1'))).toMatchObject({ ok: false });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()) }, body, now + 301_000)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('5 minutes'),
    });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()) }, body, now - 301_000)).toMatchObject({ ok: false });
    // The timestamp is signed: moving it forward breaks the signature.
    const later = String(Number(ts) + 60);
    expect(check({ timestamp: later, signature: sign(ts, body.toString()) })).toMatchObject({ ok: false });
    expect(check({ signature: sign(ts, body.toString()) })).toMatchObject({ ok: false });
    expect(check({ timestamp: ts })).toMatchObject({ ok: false });
    expect(check({ timestamp: '1e9', signature: sign('1e9', body.toString()) })).toMatchObject({ ok: false });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()).replace('v0=', 'v1=') })).toMatchObject({ ok: false });
    expect(check({ timestamp: ts, signature: sign(ts, body.toString()).toUpperCase() })).toMatchObject({ ok: false });
  });
});

describe('a click', () => {
  const id = 'ap_abcdefghijk2';
  const hash = 'a'.repeat(64);
  const payload = (over: Record<string, unknown> = {}, action: Record<string, unknown> = {}) => ({
    type: 'block_actions',
    user: { id: 'U0ALICE' },
    container: { type: 'message', channel_id: 'C0APPROVE', message_ts: '1800000000.000100' },
    actions: [{ type: 'button', action_id: 'keyway.approve_once', value: `${id}:${hash}`, action_ts: '1800000001.1', ...action }],
    ...over,
  });

  it('admits one of keyway’s buttons, naming an approval and a body hash, in the channel', () => {
    expect(readClick(payload(), 'C0APPROVE')).toMatchObject({
      ok: true,
      click: { action: 'once', approvalId: id, bodySha256: hash, user: 'U0ALICE', messageTs: '1800000000.000100' },
    });
    expect(readClick(payload({}, { action_id: 'keyway.deny' }), 'C0APPROVE')).toMatchObject({ ok: true, click: { action: 'deny' } });
  });

  it('refuses anything else', () => {
    const refused = [
      payload({ type: 'view_submission' }),
      payload({ type: 'shortcut' }),
      payload({ user: { id: 'alice' } }),
      payload({ user: undefined }),
      payload({ container: { channel_id: 'C0OTHER', message_ts: '1800000000.000100' } }),
      payload({ container: { channel_id: 'C0APPROVE' } }),
      payload({ actions: [] }),
      payload({ actions: [payload().actions[0], payload().actions[0]] }),
      payload({}, { action_id: 'keyway.approve_all' }),
      payload({}, { type: 'static_select' }),
      payload({}, { value: id }),
      payload({}, { value: `${id}:${'a'.repeat(63)}` }),
      payload({}, { value: `ap_ABCDEFGHIJKL:${hash}` }),
      payload({}, { value: `${id}:${hash}:extra` }),
      payload({}, { action_ts: undefined }),
      'payload',
      null,
      [],
    ];
    for (const p of refused) expect(readClick(p, 'C0APPROVE'), JSON.stringify(p)).toMatchObject({ ok: false });
  });

  it('admits keyway’s Deny modal only, carrying an approval of the channel, with a bounded reason', () => {
    const view = (over: Record<string, unknown> = {}, reason: unknown = 'not now') => ({
      type: 'view_submission',
      user: { id: 'U0ALICE' },
      view: {
        id: 'V1',
        callback_id: 'keyway.deny_reason',
        private_metadata: `${id}:${hash}:C0APPROVE:1800000000.000100`,
        state: { values: { reason: { reason: { type: 'plain_text_input', value: reason } } } },
        ...over,
      },
    });
    expect(readClick(view(), 'C0APPROVE')).toMatchObject({
      ok: true,
      click: { action: 'deny', approvalId: id, bodySha256: hash, reason: 'not now', key: 'U0ALICE|view|V1' },
    });
    for (const p of [
      view({ callback_id: 'other' }),
      view({ private_metadata: `${id}:${hash}:C0OTHER:1800000000.000100` }),
      view({ private_metadata: `${id}:${hash}` }),
      view({ id: undefined }),
      view({}, 'x'.repeat(2_001)),
      view({}, 42),
    ])
      expect(readClick(p, 'C0APPROVE'), JSON.stringify(p).slice(0, 200)).toMatchObject({ ok: false });
  });

  it('gives a replay the same key and another click another', () => {
    const a = readClick(payload(), 'C0APPROVE');
    const b = readClick(payload(), 'C0APPROVE');
    const c = readClick(payload({}, { action_ts: '1800000002.1' }), 'C0APPROVE');
    if (!a.ok || !b.ok || !c.ok) throw new Error('expected clicks');
    expect(a.click.key).toBe(b.click.key);
    expect(c.click.key).not.toBe(a.click.key);
  });
});

describe('approvals.slack in the config', () => {
  const load = (slack: Record<string, unknown>) => parseConfig({ approvals: { slack } }, '/home/test');
  const base = { bot_token: 'env:B', signing_secret: 'env:S', app_token: 'env:A', channel: 'C0APPROVE', approvers: { U0ALICE: 'alice' } };

  it('reads references, defaults to Socket Mode and Slack’s API', () => {
    expect(load(base).approvals.slack).toMatchObject({
      bot_token: { kind: 'env', name: 'B' },
      mode: 'socket',
      api_url: 'https://slack.com/api/',
      max_messages_per_minute: 20,
    });
    expect(load({ ...base, app_token: undefined, mode: 'http' }).approvals.slack?.mode).toBe('http');
  });

  it('refuses a literal token, Socket Mode without an app token, a channel name, a user name, no approvers, an http API off loopback', () => {
    expect(thrownMessage(() => load({ ...base, bot_token: 'xoxb-123' }))).toContain('bot_token');
    expect(thrownMessage(() => load({ ...base, app_token: undefined }))).toContain('app_token');
    expect(thrownMessage(() => load({ ...base, channel: '#approvals' }))).toContain('channel id');
    expect(thrownMessage(() => load({ ...base, approvers: { alice: 'alice' } }))).toContain('user id');
    expect(thrownMessage(() => load({ ...base, approvers: {} }))).toContain('at least one approver');
    expect(thrownMessage(() => load({ ...base, api_url: 'http://slack.example.com/api/' }))).toContain('api_url');
    expect(thrownMessage(() => load({ ...base, webhook: 'x' }))).toContain('webhook');
  });
});
