// Anomaly holds answered in Slack, end to end (issue 90, items 1 and 2 together), through the real
// proxy and a loopback stand-in of Slack (Socket Mode): under `anomaly: {mode: hold}` an agent's
// first use of a grant is posted naming the signal (and why) as what held it, with no rule named
// (none asked); a mapped approver's click releases exactly that request, which the upstream gets
// once; a Deny refuses the next unusual one (a new method), which the upstream never gets. Under
// `alert` (an agent's override), the request goes on at once and Slack gets a plain message
// without buttons. The canary is the grant's secret: never in Slack, the audit log or the logs.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type SlackMessage, type SlackStandin, startSlackStandin } from '../helpers/slack-standin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-slack-anomaly`;
const BOT = 'xoxb-anomaly-bot';
const APP = 'xapp-anomaly-app';
const ALICE = 'U0ALICE';

describe('anomaly holds and alerts in Slack', () => {
  let slack: SlackStandin;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const agents = new Map<string, ProxyAgent>();

  beforeAll(async () => {
    slack = await startSlackStandin({ botToken: BOT, appToken: APP, signingSecret: 'anomaly-signing' });
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    const allow = [{ grant: 'api', methods: ['GET', 'POST', 'DELETE'] }];
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key', WATCHER_KEY: 'watcher-key', SLACK_BOT: BOT, SLACK_APP: APP, SLACK_SIGNING: 'anomaly-signing' },
      config: {
        approvals: {
          slack: {
            bot_token: 'env:SLACK_BOT',
            signing_secret: 'env:SLACK_SIGNING',
            app_token: 'env:SLACK_APP',
            channel: 'C0APPROVE',
            mode: 'socket',
            approvers: { [ALICE]: 'alice' },
            api_url: slack.apiUrl,
          },
        },
        anomaly: { mode: 'hold', wait: '30s', agents: { watcher: { mode: 'alert' } } },
        agents: {
          bot: { key: 'env:BOT_KEY', grants: ['api'], rules: allow },
          watcher: { key: 'env:WATCHER_KEY', grants: ['api'], rules: allow },
        },
      },
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    for (const a of ['bot', 'watcher']) agents.set(a, new ProxyAgent({ uri: `http://${a}:${a}-key@127.0.0.1:${proxy.port}`, requestTls: { ca } }));
    await waitFor(() => (slack.sockets() > 0 ? true : undefined), 'the Socket Mode connection', 15_000);
  });

  afterAll(async () => {
    for (const a of agents.values()) await a.close();
    await proxy?.stop();
    for (const text of [...slack.received, readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs])
      expect(findLeak(text, SECRET), 'the canary in Slack, the audit log or a log').toBeUndefined();
    await upstream?.close();
    await slack?.close();
  });

  const call = (agent: string, method: string, path: string) =>
    request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: agents.get(agent)!,
      method: method as 'GET',
      headers: { 'content-type': 'application/json' },
      body: method === 'GET' ? undefined : JSON.stringify({ n: 1 }),
    }).then(async (r) => ({ status: r.statusCode, code: r.headers['x-keyway-error'], text: await r.body.text() }));
  const sent = (method: string, path: string) => upstream.seen.filter((s) => s.method === method && s.url === path).length;
  const messageFor = (path: string) =>
    waitFor(() => [...slack.messages.values()].find((m) => JSON.stringify(m.blocks).includes(`Path: ${path}"`)), `the message for ${path}`, 15_000);
  const texts = (m: SlackMessage) => m.blocks.map((b) => [b.text?.text ?? '', ...(b.fields ?? []).map((f) => f.text)].join('\n')).join('\n');

  it('hold: a first use is posted naming its signal; a mapped click releases exactly it, once; a Deny refuses the next', async () => {
    const first = call('bot', 'POST', '/issues');
    const m = await messageFor('/issues');
    expect(texts(m)).toContain('Held by signal: first_use (first use of grant api by this agent)');
    expect(texts(m)).not.toContain('Held by rule');
    expect(m.blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.action_id)).toEqual(['keyway.approve_once', 'keyway.deny']);
    expect(sent('POST', '/issues')).toBe(0);
    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    expect((await first).status).toBe(200);
    await waitFor(() => (texts(m).includes('Approved once by slack:alice') ? true : undefined), 'the message updated in place');
    expect(sent('POST', '/issues')).toBe(1);
    // The yes taught the history: the same again goes straight through, asking nobody.
    expect((await call('bot', 'POST', '/issues')).status).toBe(200);
    expect(sent('POST', '/issues')).toBe(2);

    const deletion = call('bot', 'DELETE', '/issues/7');
    const d = await messageFor('/issues/7');
    // A new path class too: each signal on a line of its own.
    expect(texts(d)).toContain('Held by signal: new_method (method DELETE never used on grant api)');
    expect(texts(d)).toContain('Held by signal: new_host (path class /issues/{id}');
    slack.clickBySocket({ user: ALICE, ts: d.ts, action: 'keyway.deny' });
    const modal = await waitFor(() => slack.views.at(-1), 'the Deny modal');
    slack.clickBySocket(slack.viewSubmission(modal.view, ALICE, 'no deletions'));
    const denied = await deletion;
    expect([denied.status, denied.code]).toEqual([403, 'approval_denied']);
    expect(denied.text).toContain('no deletions');
    expect(sent('DELETE', '/issues/7')).toBe(0);
    await waitFor(() => (texts(d).includes('Denied by slack:alice') ? true : undefined), 'the denial shown in place');
    const lines = proxy.auditLines().filter((l) => l['agent'] === 'bot' && l['path'] === '/issues/7' && l['decision'] !== 'approval');
    expect(lines.at(-1)).toMatchObject({ code: 'approval_denied', signal: expect.arrayContaining([expect.objectContaining({ name: 'new_method' })]) });
  });

  it('alert: the request goes on at once; Slack gets a plain message, without buttons, naming the signal and the path class only', async () => {
    const before = slack.messages.size;
    const r = await call('watcher', 'GET', '/repos/acme/api/issues?state=open&q=secret-query');
    expect(r.status).toBe(200);
    const alert = await waitFor(
      () => [...slack.messages.values()].find((m) => m.text.startsWith('keyway noticed unusual use by watcher')),
      'the alert message',
    );
    expect(slack.messages.size).toBe(before + 1);
    expect(alert.blocks.some((b) => b.type === 'actions')).toBe(false);
    expect(texts(alert)).toContain('Signal: first_use (first use of grant api by this agent)');
    expect(texts(alert)).toContain('Path class: /repos/acme');
    expect(JSON.stringify(alert.blocks)).not.toContain('issues');
    expect(JSON.stringify(alert.blocks)).not.toContain('secret-query');
    // Learned: the same request again is not unusual, and tells Slack nothing more.
    expect((await call('watcher', 'GET', '/repos/acme/api/issues')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_500));
    expect([...slack.messages.values()].filter((m) => m.text.startsWith('keyway noticed unusual use by watcher'))).toHaveLength(1);
  });
});
