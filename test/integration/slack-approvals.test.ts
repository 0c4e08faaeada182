// Slack approvals through the real proxy (issue 90, item 1): a request an approve: human rule holds
// is posted to a loopback stand-in of Slack; a mapped approver's click, signed to the admin
// listener's /slack/interactivity (mode: http) or sent over Socket Mode (mode: socket), releases
// exactly that request; a forged, stale or replayed callback and an unmapped clicker do nothing.
// Canaries: the grant's secret and a secret the agent put in the body never reach Slack, the audit
// log or the logs; nor do the bot token, the app token or the signing secret.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type SlackMessage, type SlackStandin, slackSignature, startSlackStandin } from '../helpers/slack-standin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const GRANT_SECRET = `${CANARY}-slack-grant`;
const BODY_SECRET = `${CANARY}-slack-body`;
const BOT = `xoxb-${CANARY}-bot`;
const APP = `xapp-${CANARY}-app`;
const SIGNING = `${CANARY}-signing`;
const ALICE = 'U0ALICE';
const MALLORY = 'U0MALLORY';

for (const mode of ['http', 'socket'] as const) {
  describe(`Slack approvals through the proxy (mode: ${mode})`, () => {
    let slack: SlackStandin;
    let upstream: TestUpstream;
    let proxy: TestProxy;
    let bot: ProxyAgent;
    let callbackUrl: string;

    beforeAll(async () => {
      slack = await startSlackStandin({ botToken: BOT, appToken: APP, signingSecret: SIGNING });
      upstream = await startUpstream({
        requireAuthorization: `Bearer ${GRANT_SECRET}`,
        handler: (req, res, body) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ method: req.method, path: req.url, bytes: body?.length ?? 0 }));
          return true;
        },
      });
      proxy = await startProxy({
        grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: GRANT_SECRET }],
        env: { BOT_KEY: 'bot-key', SLACK_BOT: BOT, SLACK_APP: APP, SLACK_SIGNING: SIGNING },
        config: {
          approvals: {
            slack: {
              bot_token: 'env:SLACK_BOT',
              signing_secret: 'env:SLACK_SIGNING',
              ...(mode === 'socket' ? { app_token: 'env:SLACK_APP' } : {}),
              channel: 'C0APPROVE',
              mode,
              approvers: { [ALICE]: 'alice' },
              api_url: slack.apiUrl,
            },
          },
          agents: {
            bot: {
              key: 'env:BOT_KEY',
              grants: ['api'],
              rules: [{ grant: 'api', methods: ['POST'], paths: ['/repos/*/merges'], approve: 'human', approval: { wait: '30s' } }],
            },
          },
        },
      });
      bot = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
      callbackUrl = `${adminClient(proxy).base}/slack/interactivity`;
      if (mode === 'socket') await waitFor(() => (slack.sockets() > 0 ? true : undefined), 'the Socket Mode connection', 15_000);
    });

    afterAll(async () => {
      await bot?.close();
      await proxy?.stop();
      const texts = [...slack.received, readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs];
      for (const secret of [GRANT_SECRET, BODY_SECRET, BOT, APP, SIGNING]) {
        for (const text of texts.slice(slack.received.length)) expect(findLeak(text, secret), 'a secret in the audit log or logs').toBeUndefined();
      }
      for (const secret of [GRANT_SECRET, BODY_SECRET, SIGNING, APP])
        for (const text of slack.received) expect(findLeak(text, secret), 'a secret sent to Slack').toBeUndefined();
      await upstream?.close();
      await slack?.close();
    });

    function post(path: string, body: unknown) {
      return request(`https://api.example.test:${upstream.port}${path}`, {
        dispatcher: bot,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.statusCode, code: r.headers['x-keyway-error'], text: await r.body.text() }));
    }
    const messageFor = (path: string) =>
      waitFor(() => [...slack.messages.values()].find((m) => JSON.stringify(m.blocks).includes(`Path: ${path}"`)), `the message for ${path}`, 15_000);
    const outcome = (m: SlackMessage) => JSON.stringify(m.blocks.find((b) => b.block_id === 'keyway-outcome') ?? null);
    const sent = (path: string) => upstream.seen.filter((s) => s.url === path).length;
    /** The audit lines of refused callbacks (action slack.callback), read from the audit file. */
    const refusals = () =>
      readFileSync(proxy.auditPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l['action'] === 'slack.callback');
    const refusedWith = (code: string, text: string) =>
      waitFor(() => refusals().find((l) => l['code'] === code && String(l['message']).includes(text)), `an audit line: ${code} ${text}`);

    it('a held request appears with its preview and buttons; only a mapped approver’s verified click releases it', async () => {
      const path = `/repos/${mode}/merges`;
      const held = post(path, { head: 'feature', token: BODY_SECRET });
      const m = await messageFor(path);
      expect(JSON.stringify(m.blocks)).toContain('[redacted]');
      expect(m.blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.action_id)).toEqual(['keyway.approve_once', 'keyway.deny']);
      const firstButton = m.blocks.find((b) => b.type === 'actions')!.elements![0]!.value!;

      if (mode === 'http') {
        const forged = await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.approve_once' }, { secret: 'guessed' });
        expect(forged.status).toBe(401);
        const old = Math.floor(Date.now() / 1000) - 600;
        expect((await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.approve_once' }, { timestamp: old })).status).toBe(401);
        expect((await slack.clickByHttp(callbackUrl, { user: MALLORY, ts: m.ts, action: 'keyway.approve_once' })).status).toBe(200);
      } else {
        slack.clickBySocket({ user: MALLORY, ts: m.ts, action: 'keyway.approve_once' });
      }
      await waitFor(() => slack.ephemerals.find((e) => e.user === MALLORY), 'the refusal to an unmapped clicker');
      expect(sent(path)).toBe(0);
      // Each refusal is an audit line naming the reason (never the payload, signature or a token).
      const id = /approval (ap_[a-z2-9]{12})/.exec(m.text)![1]!;
      const unmapped = await refusedWith('admin_auth_failed', `Slack user ${MALLORY} is not one of approvals.slack.approvers`);
      expect(unmapped).toMatchObject({ decision: 'admin', actor: `slack:${MALLORY}`, client: mode === 'http' ? '127.0.0.1' : 'slack-socket-mode' });
      expect(String(unmapped['message'])).toContain(id);
      if (mode === 'http') {
        await refusedWith('admin_auth_failed', 'the signature does not match the body');
        await refusedWith('admin_auth_failed', 'the timestamp is more than 5 minutes from now');
        const unsigned = await fetch(callbackUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payload=%7B%7D' });
        expect(unsigned.status).toBe(401);
        await refusedWith('admin_auth_required', 'no X-Slack-Request-Timestamp');
      }
      // The right message and approval, another body's hash: refused, audited.
      const otherBody = { user: ALICE, ts: m.ts, action: 'keyway.approve_once', value: `${id}:${'0'.repeat(64)}` };
      if (mode === 'http') await slack.clickByHttp(callbackUrl, otherBody);
      else slack.clickBySocket(otherBody);
      expect((await refusedWith('conflict', 'that button was for another body'))['actor']).toBe(`slack:${ALICE}`);
      expect(sent(path)).toBe(0);

      let taken: Awaited<ReturnType<SlackStandin['clickByHttp']>> | undefined;
      const lastAliceClick = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
      if (mode === 'http') taken = await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
      else slack.clickBySocket(lastAliceClick);
      const r = await held;
      expect(r.status).toBe(200);
      expect(sent(path)).toBe(1);
      await waitFor(() => (outcome(m).includes('Approved once by slack:alice') ? true : undefined), 'the message updated in place');
      const line = await waitFor(
        () => proxy.auditLines().find((l) => l['decision'] === 'approval' && (l['approval'] as { by?: string } | undefined)?.by === 'slack:alice'),
        'the approval line naming the Slack approver',
      );
      expect(line['approval']).toMatchObject({ outcome: 'approved_once' });

      // The same request again asks again; a replay of the first click does not answer it.
      const again = post(path, { head: 'feature', token: BODY_SECRET });
      const m2 = await waitFor(
        () => [...slack.messages.values()].find((x) => x.ts !== m.ts && JSON.stringify(x.blocks).includes(`Path: ${path}"`)),
        'the second message',
      );
      if (taken) {
        const replay = await slack.clickByHttp(callbackUrl, {}, { rawBody: taken.rawBody, timestamp: taken.timestamp, signature: taken.signature });
        expect(replay.status).toBe(200);
        expect(slackSignature(SIGNING, taken.timestamp, taken.rawBody)).toBe(taken.signature);
      } else {
        // Socket Mode: the same envelope's payload delivered again (a redelivery, or a replay).
        slack.clickBySocket(lastAliceClick);
      }
      await refusedWith('conflict', 'a payload already answered');
      // A button from the first message, aimed at the second: bound to another id and body.
      const forOther = { user: ALICE, ts: m2.ts, action: 'keyway.approve_once', value: firstButton };
      if (mode === 'http') await slack.clickByHttp(callbackUrl, forOther);
      else slack.clickBySocket(forOther);
      await waitFor(
        () => slack.ephemerals.find((e) => e.user === ALICE && e.text.includes('not on keyway')),
        'the refusal of a button bound to another request',
      );
      await refusedWith('conflict', 'that button is not on keyway’s message for this approval');
      expect(sent(path)).toBe(1);
      const deny = { user: ALICE, ts: m2.ts, action: 'keyway.deny' };
      if (mode === 'http') await slack.clickByHttp(callbackUrl, deny);
      else slack.clickBySocket(deny);
      const modal = await waitFor(() => slack.views[0], 'the Deny modal');
      const submitted = slack.viewSubmission(modal.view, ALICE, 'wrong branch');
      if (mode === 'http') {
        const answer = await slack.clickByHttp(callbackUrl, submitted);
        // An empty 200 closes the modal (a JSON body would be read as a response_action).
        expect([answer.status, answer.text]).toEqual([200, '']);
      } else slack.clickBySocket(submitted);
      const denied = await again;
      expect(denied.code).toBe('approval_denied');
      expect(denied.text).toContain('wrong branch');
      expect(sent(path)).toBe(1);
      // No refusal line carries a payload, a signature or a secret.
      const lines = JSON.stringify(refusals());
      for (const text of ['block_actions', 'v0=', 'action_ts', BOT, APP, SIGNING, BODY_SECRET]) expect(lines).not.toContain(text);
    });

    it.runIf(mode === 'http')('answers a click at once, before a slow Slack has opened the Deny modal (Slack waits 3 s)', async () => {
      const path = `/repos/${mode}-slow/merges`;
      const held = post(path, { head: 'slow' });
      const m = await messageFor(path);
      const opened = slack.views.length;
      slack.delays['views.open'] = 5_000;
      try {
        const started = Date.now();
        const answer = await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.deny' });
        const took = Date.now() - started;
        expect([answer.status, answer.text]).toEqual([200, '']);
        // Well under 1 s when idle; Slack's own 3 s is the bound that still holds on a loaded machine
        // (views.open alone takes 5 s here, so a click answered after it cannot pass).
        expect(took).toBeLessThan(3_000);
        const modal = await waitFor(() => slack.views[opened], 'the Deny modal, opened after the answer', 20_000);
        const submitted = await slack.clickByHttp(callbackUrl, slack.viewSubmission(modal.view, ALICE, 'too slow'));
        expect(submitted.status).toBe(200);
      } finally {
        delete slack.delays['views.open'];
      }
      const denied = await held;
      expect(denied.code).toBe('approval_denied');
      expect(denied.text).toContain('too slow');
      expect(sent(path)).toBe(0);
    });
  });
}
