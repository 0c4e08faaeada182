// Slack approvals behind a company's proxy (issue 90, item 1, with egress.proxy): the Web API calls
// (chat.postMessage, chat.update, apps.connections.open) and Socket Mode's WebSocket go through
// egress.proxy by CONNECT, as the token endpoints' calls do. The proxy here is a loopback CONNECT
// recorder: it tunnels to the stand-in of Slack and keeps what each tunnel carried, so the test sees
// the Web API's request lines and the WebSocket's upgrade inside tunnels, and no connection from
// keyway to the stand-in outside them (the stand-in counts the connections it took).
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConnectRecorder, startConnectRecorder } from '../helpers/connect-recorder.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { type SlackStandin, startSlackStandin } from '../helpers/slack-standin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const GRANT_SECRET = `${CANARY}-slack-egress-grant`;
const BOT = 'xoxb-egress-bot';
const APP = 'xapp-egress-app';
const SIGNING = 'egress-signing-secret';
const ALICE = 'U0ALICE';

describe('Slack approvals through egress.proxy (mode: socket)', () => {
  let slack: SlackStandin;
  let corp: ConnectRecorder;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let bot: ProxyAgent;

  beforeAll(async () => {
    slack = await startSlackStandin({ botToken: BOT, appToken: APP, signingSecret: SIGNING });
    corp = await startConnectRecorder();
    upstream = await startUpstream({ requireAuthorization: `Bearer ${GRANT_SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: GRANT_SECRET }],
      env: { BOT_KEY: 'bot-key', SLACK_BOT: BOT, SLACK_APP: APP, SLACK_SIGNING: SIGNING },
      config: {
        egress: { proxy: corp.url },
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
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['api'],
            rules: [{ grant: 'api', methods: ['POST'], approve: 'human', approval: { wait: '30s' } }],
          },
        },
      },
    });
    bot = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    await waitFor(() => (slack.sockets() > 0 ? true : undefined), 'the Socket Mode connection', 15_000);
  });

  afterAll(async () => {
    await bot?.close();
    await proxy?.stop();
    await upstream?.close();
    await slack?.close();
    await corp?.close();
  });

  it('posts, updates and takes clicks with every Slack connection tunnelled through egress.proxy', async () => {
    const slackAuthority = new URL(slack.apiUrl).host;
    const held = request(`https://api.example.test:${upstream.port}/deploy`, {
      dispatcher: bot,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ref: 'main' }),
    });
    const m = await waitFor(() => [...slack.messages.values()].find((x) => JSON.stringify(x.blocks).includes('Path: /deploy"')), 'the message', 15_000);
    slack.clickBySocket({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    expect((await held).statusCode).toBe(200);
    await waitFor(() => (m.updates > 0 ? true : undefined), 'the message updated in place');

    const toSlack = corp.tunnels.filter((t) => t.authority === slackAuthority);
    const carried = toSlack.map((t) => t.sent).join('\n');
    for (const call of ['POST /api/apps.connections.open ', 'POST /api/chat.postMessage ', 'POST /api/chat.update ']) expect(carried).toContain(call);
    // The WebSocket's upgrade, and the envelope's acknowledgement after it, went through a tunnel too.
    const socketTunnel = toSlack.find((t) => t.sent.startsWith('GET /link/'));
    expect(socketTunnel?.sent).toMatch(/upgrade: websocket/i);
    expect(socketTunnel?.received).toMatch(/^HTTP\/1\.1 101/);
    // Every connection the stand-in took came through the recorder: none went around it.
    expect(slack.connections().every((c) => c.remotePort !== undefined && corp.outbound().includes(c.remotePort))).toBe(true);
    expect(slack.connections().length).toBeGreaterThanOrEqual(2);
    expect(corp.refused).toEqual([]);
  });
});
