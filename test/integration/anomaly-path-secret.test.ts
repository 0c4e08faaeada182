// The grant's secret written into a path segment never leaves through the anomaly path class
// (issue 90 review, s98): the class is read from the path the audit line keeps (stage path-secret
// redacted it) and keeps only plain words (src/anomaly/core/path-class.ts), so neither a short secret
// with `:` and no digit nor a Telegram-shaped one (`123456:AAE…`) reaches a SIEM (syslog, CEF), the
// Slack stand-in, approvals.notify, the store or any file under the home. Through the real proxy,
// anomaly: alert, a first use and then a new path class (new_host) on each grant.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines, untilReceived } from '../helpers/audit-export.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type Receiver, tcpReceiver } from '../helpers/siem-receivers.ts';
import { type SlackStandin, startSlackStandin } from '../helpers/slack-standin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Short, with `:`, no digit: it looks like no id.
const SHORT = 'kw:hushhush';
// Telegram's bot token shape: digits, `:`, then letters and `-`/`_`.
const TELEGRAM = '918273:AAEkwCanaryTelegramBotTok-en_x';
const BOT = 'xoxb-pathclass-bot';
const APP = 'xapp-pathclass-app';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const st = statSync(path);
    return st.isDirectory() ? filesUnder(path) : st.isFile() ? [path] : [];
  });
}

describe('anomaly path classes carry no secret', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let slack: SlackStandin;
  let syslog: Receiver;
  let cef: Receiver;
  let hook: Server;
  const notified: string[] = [];
  let agent: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    slack = await startSlackStandin({ botToken: BOT, appToken: APP, signingSecret: 'pathclass-signing' });
    syslog = await tcpReceiver();
    cef = await tcpReceiver();
    hook = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        notified.push(Buffer.concat(chunks).toString('utf8'));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    proxy = await startProxy({
      grants: [
        { id: 'short', type: 'bearer', domains: ['other.example.test'], secret: SHORT },
        { id: 'tg', type: 'bearer', domains: ['plain.example.test'], secret: TELEGRAM },
      ],
      env: { BOT_KEY: 'bot-key', SLACK_BOT: BOT, SLACK_APP: APP, SLACK_SIGNING: 'pathclass-signing' },
      config: {
        approvals: {
          notify: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
          slack: {
            bot_token: 'env:SLACK_BOT',
            signing_secret: 'env:SLACK_SIGNING',
            app_token: 'env:SLACK_APP',
            channel: 'C0ALERTS',
            mode: 'socket',
            approvers: { U0ALICE: 'alice' },
            api_url: slack.apiUrl,
          },
        },
        anomaly: { mode: 'alert' },
        audit: {
          export: [
            { format: 'syslog', to: `syslog+tcp://127.0.0.1:${syslog.port}` },
            { format: 'cef', to: `syslog+tcp://127.0.0.1:${cef.port}` },
          ],
        },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['short', 'tg'] } },
      },
    });
    agent = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    await waitFor(() => (slack.sockets() > 0 ? true : undefined), 'the Socket Mode connection', 15_000);
  });

  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    await upstream?.close();
    await slack?.close();
    await syslog?.close();
    await cef?.close();
    await new Promise((r) => hook?.close(r));
  });

  const call = async (host: string, path: string) => {
    const r = await request(`https://${host}:${upstream.port}${path}`, { dispatcher: agent });
    await r.body.text();
    return r.statusCode;
  };

  it('a secret in a path segment reaches no receiver, no Slack message, no notify body, no store file', async () => {
    const cases = [
      { host: 'other.example.test', secret: SHORT, path: `/${SHORT}/send` },
      { host: 'plain.example.test', secret: TELEGRAM, path: `/bot${TELEGRAM}/sendMessage` },
    ];
    for (const c of cases) {
      // A first use, learned; then the secret in the first segment: a path class never called (new_host).
      expect(await call(c.host, '/ok/x')).toBe(200);
      expect(await call(c.host, c.path)).toBe(200);
    }
    const lines = await waitFor(() => {
      const found = logLines(proxy).filter((l) => l.phase === undefined && l.signal?.some((s) => s.name === 'new_host'));
      return found.length === 2 ? found : undefined;
    }, 'both new_host lines');
    for (const line of lines) expect(line.signal?.find((s) => s.name === 'new_host')?.why).toMatch(/^path class \/\{id\}\/(send|\{id\}) on /);
    for (const r of [syslog, cef]) for (const line of lines) await untilReceived(r, line.seq);
    // Four alerts: two first uses and two new classes, to Slack and to approvals.notify.
    await waitFor(() => (notified.length >= 4 ? true : undefined), 'the four notify bodies', 15_000);
    await waitFor(
      () => ([...slack.messages.values()].filter((m) => m.text.startsWith('keyway noticed unusual use by bot')).length >= 4 ? true : undefined),
      'the four Slack alerts',
      15_000,
    );
    expect(notified.join('\n')).toContain('"path_class":"/{id}/');
    await proxy.stop();
    const outputs: Array<[string, string]> = [
      ['syslog', syslog.messages.join('\n')],
      ['cef', cef.messages.join('\n')],
      ['slack', slack.received.join('\n')],
      ['notify', notified.join('\n')],
      ['logs', proxy.logs.join('')],
      ...filesUnder(proxy.home).map((f): [string, string] => [f, readFileSync(f, 'latin1')]),
    ];
    for (const c of cases) for (const [where, text] of outputs) expect(findLeak(text, c.secret), `${c.secret} in ${where}`).toBeUndefined();
  }, 120_000);
});
