// Slack approvals (issue 90, item 1), the room against a loopback stand-in of Slack: the desk that
// holds requests (a real ApprovalDesk on a real file store), keyway's Slack room posting and
// updating messages through the stand-in's Web API, and clicks arriving by Socket Mode (Node's
// WebSocket to the URL apps.connections.open returned) or signed to the HTTP interactivity handler.
// A canary sits in every held body, under a secret's name: it must never reach the stand-in.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApprovalAsk, ApprovalDesk, type ApprovalPass } from '../../src/approvals/desk.ts';
import { answerInteractivity } from '../../src/approvals/slack/http.ts';
import { SlackRoom } from '../../src/approvals/slack/room.ts';
import { type SocketMode, startSocketMode } from '../../src/approvals/slack/socket.ts';
import { slackWebApi } from '../../src/approvals/slack/web-api.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type SlackMessage, type SlackStandin, slackSignature, startSlackStandin } from '../helpers/slack-standin.ts';
import { waitFor } from '../helpers/wait.ts';

const BOT = 'xoxb-standin-bot';
const APP = 'xapp-standin-app';
const SIGNING = 'standin-signing-secret';
const CHANNEL = 'C0APPROVE';
const ALICE = 'U0ALICE';
const MALLORY = 'U0MALLORY';
const SECRET_IN_BODY = `${CANARY}-slack-body`;

describe('Slack approvals: the room against a stand-in of Slack', () => {
  let slack: SlackStandin;
  let dir: string;
  let store: Store;
  let desk: ApprovalDesk;
  let room: SlackRoom;
  let socket: SocketMode;
  let botToken = BOT;
  let perMinute = 50;
  const logs: string[] = [];
  const audited: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    slack = await startSlackStandin({ botToken: BOT, appToken: APP, signingSecret: SIGNING });
    dir = mkdtempSync(join(tmpdir(), 'keyway-slack-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
    desk = new ApprovalDesk({
      store,
      audit: { write: async () => {} },
      logger,
      limits: () => ({ max_pending: 100, max_pending_per_agent: 50, max_held_body: 1 << 20, pending_ttl: 900_000 }),
      now: () => new Date(),
      holder: { host: 'test', pid: process.pid, started_at: new Date().toISOString() },
      notify: () => room.storeChanged(),
    });
    await desk.start();
    const api = slackWebApi(slack.apiUrl, undefined);
    room = new SlackRoom({
      settings: () => ({ channel: CHANNEL, approvers: { [ALICE]: 'alice' }, max_messages_per_minute: perMinute }),
      botToken: () => botToken,
      api,
      store,
      desk: { get: (id) => desk.get(id), decide: (id, asked) => desk.decide(id, asked).finally(() => room.storeChanged()) },
      logger,
      now: () => new Date(),
      audit: { write: async (event) => void audited.push({ ...event }) },
    });
    room.start();
    socket = startSocketMode({
      open: async () => String((await api.call('apps.connections.open', APP, {}))['url']),
      onInteractive: (payload) => void room.click(payload),
      logger,
    });
    await waitFor(() => (socket.connected() ? true : undefined), 'the Socket Mode hello');
  });

  afterAll(async () => {
    socket?.stop();
    await room?.stop();
    await desk?.stop();
    for (const text of [...slack.received, ...logs]) expect(findLeak(text, SECRET_IN_BODY), 'the canary reached Slack or a log').toBeUndefined();
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  function ask(options: { waitMs?: number; windowMs?: number; body?: unknown; preview?: 'none' } = {}): { path: string; held: Promise<ApprovalPass> } {
    const path = `/repos/acme/merges/${++n}`;
    const body = Buffer.from(JSON.stringify(options.body ?? { title: `merge ${n}`, token: SECRET_IN_BODY, note: `ghp_${'a'.repeat(36)}` }));
    const request: ApprovalAsk = {
      agent: 'bot',
      chain: ['lead', 'bot'],
      grant: 'api',
      method: 'POST',
      path,
      rule: {
        rule: 'agents.bot.rules[1] (POST approve: human)',
        waitMs: options.waitMs ?? 20_000,
        windowMs: options.windowMs ?? 0,
        paths: undefined,
        preview: options.preview ?? 'redacted',
      },
      host: 'api.example.test',
      port: 443,
      purpose: 'merge the release <!channel>',
      body,
      contentType: 'application/json',
      onClientGone: () => () => {},
    };
    const held = desk.pass(request);
    held.catch(() => {});
    return { path, held };
  }

  const messageFor = (path: string) =>
    waitFor(() => [...slack.messages.values()].find((m) => JSON.stringify(m.blocks).includes(`Path: ${path}"`)), `the message for ${path}`);
  /** Clicks Deny, and returns the modal that asks for a reason. */
  async function denyModal(m: SlackMessage): Promise<Record<string, unknown>> {
    const before = slack.views.length;
    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.deny' });
    return (await waitFor(() => slack.views[before], 'the Deny modal')).view;
  }
  const idOf = (m: SlackMessage) => /approval (ap_[a-z2-9]{12})/.exec(m.text)?.[1] ?? '';
  const outcome = (m: SlackMessage) => JSON.stringify(m.blocks.find((b) => b.block_id === 'keyway-outcome') ?? null);

  it('posts a held request with its facts, the redacted preview, the hash prefix and the buttons, as plain text', async () => {
    const { path, held } = ask({ windowMs: 900_000 });
    const m = await messageFor(path);
    const text = JSON.stringify(m.blocks);
    expect(m.channel).toBe(CHANNEL);
    for (const fact of ['lead > bot', 'Grant: api', 'POST', 'api.example.test', path, 'agents.bot.rules[1]', '[redacted]', 'sha256 '])
      expect(text).toContain(fact);
    expect(text).not.toContain('ghp_');
    const actions = m.blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.action_id);
    expect(actions).toEqual(['keyway.approve_once', 'keyway.approve_window', 'keyway.deny']);
    // Whatever the agent wrote is plain_text: Slack renders no <!channel> mention from it.
    expect(m.blocks.filter((b) => b.text?.text.includes('<!channel>')).every((b) => b.text?.type === 'plain_text')).toBe(true);
    expect(slack.calls.filter((c) => c.method === 'chat.postMessage').every((c) => c.token === BOT)).toBe(true);
    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_window' });
    await expect(held).resolves.toMatchObject({ outcome: 'window', by: 'slack:alice' });
  });

  it('takes nothing from an unmapped clicker (an ephemeral refusal), a forged body hash, or another message; a mapped click releases that request', async () => {
    const { path, held } = ask();
    const m = await messageFor(path);
    const id = idOf(m);
    const envelope = slack.clickBySocket({ user: MALLORY, ts: m.ts, action: 'keyway.approve_once' });
    await waitFor(() => slack.ephemerals.find((e) => e.user === MALLORY), 'the refusal to an unmapped clicker');
    expect(slack.acked.has(envelope)).toBe(true);
    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_once', value: `${id}:${'0'.repeat(64)}` });
    await waitFor(() => slack.ephemerals.find((e) => e.user === ALICE && e.text.includes('another body')), 'the refusal of another body');
    // Another held request's message, its button aimed at this approval: not keyway's message for it.
    const other = ask();
    const m2 = await messageFor(other.path);
    const value = m.blocks.find((b) => b.type === 'actions')!.elements![0]!.value!;
    slack.clickBySocket({ user: ALICE, ts: m2.ts, action: 'keyway.approve_once', value });
    await waitFor(() => slack.ephemerals.find((e) => e.text.includes('not on keyway')), 'the refusal of a button on another message');
    expect(desk.get(id)?.state).toBe('pending');
    expect(desk.get(idOf(m2))?.state).toBe('pending');

    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    await expect(held).resolves.toMatchObject({ id, outcome: 'once', by: 'slack:alice' });
    await waitFor(() => (outcome(m).includes('Approved once by slack:alice') ? true : undefined), 'the message updated in place');
    expect(desk.get(idOf(m2))?.state).toBe('pending');
    // Deny asks for a reason in a modal; only a mapped approver's submission of it decides.
    const view = await denyModal(m2);
    expect(desk.get(idOf(m2))?.state).toBe('pending');
    slack.clickBySocket(slack.viewSubmission(view, MALLORY, 'let it through'));
    await waitFor(() => slack.ephemerals.filter((e) => e.user === MALLORY)[1], 'the refusal of an unmapped submission');
    expect(desk.get(idOf(m2))?.state).toBe('pending');
    slack.clickBySocket(slack.viewSubmission(view, ALICE, 'not during the freeze'));
    await expect(other.held).rejects.toMatchObject({ code: 'approval_denied', message: expect.stringContaining('not during the freeze') });
    expect(desk.get(idOf(m2))?.decision).toMatchObject({ outcome: 'deny', by: 'slack:alice', reason: 'not during the freeze' });
    // The same modal submitted again (a replay) decides nothing more.
    expect(await room.click(slack.viewSubmission(view, ALICE, 'changed my mind'))).toBe('a payload already answered');
  });

  it('by HTTP: a bad signature, a stale timestamp and a replayed payload do nothing; a double click finds it decided', async () => {
    const { path, held } = ask();
    const m = await messageFor(path);
    const id = idOf(m);
    const payload = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    const rawBody = Buffer.from(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
    const now = Date.now();
    const at = Math.floor(now / 1000);
    const send = (timestamp: number, signature: string, body = rawBody) =>
      answerInteractivity(room, SIGNING, { rawBody: body, timestamp: String(timestamp), signature }, now, pino({ level: 'silent' }));

    expect(await send(at, slackSignature('not-the-secret', at, rawBody.toString()))).toMatchObject({ status: 401 });
    const stale = at - 301;
    expect(await send(stale, slackSignature(SIGNING, stale, rawBody.toString()))).toMatchObject({ status: 401 });
    // Signed over one body, sent with another (a deny swapped for the approve).
    const deny = Buffer.from(`payload=${encodeURIComponent(JSON.stringify(slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.deny' })))}`);
    expect(await send(at, slackSignature(SIGNING, at, rawBody.toString()), deny)).toMatchObject({ status: 401 });
    expect(await send(at, slackSignature(SIGNING, at, `${rawBody.toString()}&x=1`), Buffer.from(`${rawBody.toString()}&x=1`))).toMatchObject({ status: 400 });
    expect(desk.get(id)?.state).toBe('pending');

    const signature = slackSignature(SIGNING, at, rawBody.toString());
    // Answered at once; the click is taken after (clicked settles with the room's verdict).
    const taken = await send(at, signature);
    expect(taken.status).toBe(200);
    expect(taken.status === 200 && (await taken.clicked)).toBeUndefined();
    await expect(held).resolves.toMatchObject({ id, outcome: 'once', by: 'slack:alice' });
    const before = slack.ephemerals.length;
    const replayed = await send(at, signature);
    expect(replayed.status === 200 && (await replayed.clicked)).toBe('a payload already answered');
    expect(slack.ephemerals.length).toBe(before);
    const again = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.deny' });
    expect((await room.click(again)) ?? '').toContain('nothing left to decide');
    expect(desk.get(id)?.decision).toMatchObject({ outcome: 'once', by: 'slack:alice' });
  });

  it('updates the message when the request is answered elsewhere (the CLI, the dashboard) or times out', async () => {
    const a = ask();
    const ma = await messageFor(a.path);
    await desk.decide(idOf(ma), { approve: false, reason: 'not today', by: 'token', now: new Date() });
    await expect(a.held).rejects.toMatchObject({ code: 'approval_denied' });
    await waitFor(() => (outcome(ma).includes('Denied by token') ? true : undefined), 'the message updated after an answer elsewhere');
    expect(JSON.stringify(ma.blocks)).not.toContain('keyway.approve_once');

    const b = ask({ waitMs: 1_500 });
    const mb = await messageFor(b.path);
    await expect(b.held).rejects.toMatchObject({ code: 'approval_expired' });
    await waitFor(() => (outcome(mb).includes('Expired') ? true : undefined), 'the message updated after a timeout');
  });

  it('a click that arrives after its approval expired approves nothing: refused, audited, the clicker told', async () => {
    const { path, held } = ask({ waitMs: 1_500 });
    const m = await messageFor(path);
    const id = idOf(m);
    // Made while the buttons were there; delivered after the wait ran out (a slow network, a retry).
    const late = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    await expect(held).rejects.toMatchObject({ code: 'approval_expired' });
    expect((await room.click(late)) ?? '').toContain('is expired');
    expect(desk.get(id)?.state).toBe('expired');
    expect(desk.get(id)?.decision).toBeUndefined();
    expect(slack.ephemerals.find((e) => e.user === ALICE && e.text.includes(`${id} is expired`))).toBeDefined();
    expect(audited.find((e) => String(e['message']).includes(`${id} is expired`))).toMatchObject({
      decision: 'admin',
      action: 'slack.callback',
      code: 'conflict',
      actor: `slack:${ALICE}`,
      client: 'slack-socket-mode',
      path: null,
    });
    await waitFor(() => (outcome(m).includes('Expired') ? true : undefined), 'the message shows the expiry');
  });

  it('shows no preview when the rule says preview: none', async () => {
    const { path, held } = ask({ preview: 'none', body: { amount: 12, memo: 'quarterly' } });
    const m = await messageFor(path);
    expect(JSON.stringify(m.blocks)).toContain('approval.preview: none');
    expect(JSON.stringify(m.blocks)).not.toContain('quarterly');
    slack.clickBySocket(slack.viewSubmission(await denyModal(m), ALICE, ''));
    await expect(held).rejects.toMatchObject({ code: 'approval_denied', message: expect.stringContaining('denied in Slack by alice') });
  });

  it('Slack down or a wrong token: nothing is posted, the hold expires as its rule says, nothing is approved', async () => {
    await room.settled();
    slack.down = true;
    const failed = () => logs.filter((l) => l.includes('Slack approvals: could not')).length;
    const before = failed();
    const a = ask({ waitMs: 3_000 });
    try {
      await expect(a.held).rejects.toMatchObject({ code: 'approval_expired' });
    } finally {
      slack.down = false;
    }
    // A failure pauses sending (5 s): no retry every second, no log line every second.
    expect(failed() - before).toBe(1);
    botToken = 'xoxb-wrong';
    const b = ask({ waitMs: 8_000 });
    await expect(b.held).rejects.toMatchObject({ code: 'approval_expired' });
    botToken = BOT;
    // Slack back: the next hold is posted.
    const c = ask();
    const m = await waitFor(
      () => [...slack.messages.values()].find((x) => JSON.stringify(x.blocks).includes(`Path: ${c.path}"`)),
      'a post once Slack is back',
      15_000,
    );
    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    await expect(c.held).resolves.toMatchObject({ outcome: 'once' });
    expect([...slack.messages.values()].some((m) => JSON.stringify(m.blocks).includes(a.path) || JSON.stringify(m.blocks).includes(b.path))).toBe(false);
    expect(slack.calls.some((c) => c.token === 'xoxb-wrong')).toBe(true);
    expect(logs.join('\n')).toContain('invalid_auth');
    expect(logs.join('\n')).not.toContain('xoxb-wrong');
  });

  it('Socket Mode: after Slack asks for a refresh, keyway opens a new connection and clicks arrive again', async () => {
    const opened = slack.calls.filter((c) => c.method === 'apps.connections.open').length;
    slack.disconnectSockets();
    await waitFor(
      () => (slack.calls.filter((c) => c.method === 'apps.connections.open').length > opened ? true : undefined),
      'a new apps.connections.open',
      10_000,
    );
    expect(slack.calls.filter((c) => c.method === 'apps.connections.open').every((c) => c.token === APP)).toBe(true);
    await waitFor(() => (socket.connected() && slack.sockets() === 1 ? true : undefined), 'the new connection', 10_000);
    const { path, held } = ask();
    const m = await messageFor(path);
    const envelope = slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    await expect(held).resolves.toMatchObject({ outcome: 'once', by: 'slack:alice' });
    expect(slack.acked.has(envelope)).toBe(true);
  });

  it('two rooms on one store (two replicas): each approval is posted once, and either takes its click', async () => {
    const twin = new SlackRoom({
      settings: () => ({ channel: CHANNEL, approvers: { [ALICE]: 'alice' }, max_messages_per_minute: 50 }),
      botToken: () => BOT,
      api: slackWebApi(slack.apiUrl, undefined),
      store,
      desk: { get: (id) => desk.get(id), decide: (id, asked) => desk.decide(id, asked) },
      logger: pino({ level: 'silent' }),
      now: () => new Date(),
    });
    twin.start();
    try {
      const asks = Array.from({ length: 4 }, () => ask());
      for (const a of asks) await messageFor(a.path);
      await room.settled();
      await twin.settled();
      for (const a of asks) expect([...slack.messages.values()].filter((m) => JSON.stringify(m.blocks).includes(`Path: ${a.path}"`)).length).toBe(1);
      for (const a of asks) {
        const m = await messageFor(a.path);
        expect(await twin.click(slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' }))).toBeUndefined();
        await expect(a.held).resolves.toMatchObject({ outcome: 'once', by: 'slack:alice' });
        await waitFor(() => (outcome(m).includes('Approved once') ? true : undefined), 'the message updated once');
      }
      await room.settled();
      await twin.settled();
      for (const a of asks) expect((await messageFor(a.path)).updates).toBe(1);
    } finally {
      await twin.stop();
    }
  });

  it('a flood of holds: at most max_messages_per_minute posted, one summary counting the rest', async () => {
    await room.settled();
    const posted = slack.calls.filter((c) => c.method === 'chat.postMessage').length;
    perMinute = 0; // the minute's budget is spent: every new hold is counted, none posted
    const asks = Array.from({ length: 8 }, () => ask({ waitMs: 0 }));
    const summary = await waitFor(() => [...slack.messages.values()].find((m) => m.text.includes('8 more approvals waiting')), 'the summary message');
    expect(slack.calls.filter((c) => c.method === 'chat.postMessage').length).toBe(posted + 1);
    for (const a of asks) await expect(a.held).rejects.toMatchObject({ code: 'approval_required' });
    for (const a of asks) {
      const id = desk.list().find((r) => r.path === a.path)!.id;
      await desk.decide(id, { approve: false, by: 'token', now: new Date() });
    }
    await waitFor(() => (summary.text.includes('no approvals are waiting unposted') ? true : undefined), 'the summary updated in place');
    perMinute = 50;
  });
});
