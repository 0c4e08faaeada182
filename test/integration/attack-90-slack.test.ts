// Attacking Slack approvals (issue 90, item 4) through the real proxy, the loopback Slack stand-in
// and HTTP interactivity on the admin listener. The agent is hostile, on the same machine, and may
// be an unprivileged Slack user who can read the channel and click. Every forged, altered, stale,
// duplicated or misdirected callback changes nothing; a mapped approver's click is bound to the
// message, approval and body it was on; Slack down approves nothing; a flood of holds is bounded.
// Canary: the grant's secret, which the agent plants in every place a preview could show it (an
// innocently named JSON field, its base64, a form field, the purpose header, the query, a multipart
// part): none of it reaches Slack.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { type SlackMessage, type SlackStandin, slackSignature, startSlackStandin } from '../helpers/slack-standin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const GRANT_SECRET = `${CANARY}-attack-slack-grant`;
const BOT = `xoxb-${CANARY}-attack-bot`;
const SIGNING = `${CANARY}-attack-signing`;
const ALICE = 'U0ALICE';
const MALLORY = 'U0MALLORY';

describe('attack 90: Slack approvals', () => {
  let slack: SlackStandin;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let bot: ProxyAgent;
  let callbackUrl: string;
  const outputs: string[] = [];

  beforeAll(async () => {
    slack = await startSlackStandin({ botToken: BOT, appToken: 'xapp-unused', signingSecret: SIGNING });
    upstream = await startUpstream({ requireAuthorization: `Bearer ${GRANT_SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test', 'other.example.test'], secret: GRANT_SECRET }],
      env: { BOT_KEY: 'bot-key', SLACK_BOT: BOT, SLACK_SIGNING: SIGNING },
      config: {
        approvals: {
          slack: {
            bot_token: 'env:SLACK_BOT',
            signing_secret: 'env:SLACK_SIGNING',
            channel: 'C0APPROVE',
            mode: 'http',
            approvers: { [ALICE]: 'alice' },
            api_url: slack.apiUrl,
            max_messages_per_minute: 12,
          },
        },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['api'],
            rules: [
              { grant: 'api', methods: ['POST'], paths: ['/held/**'], approve: 'human', approval: { wait: '30s' } },
              { grant: 'api', methods: ['POST'], paths: ['/short/**'], approve: 'human', approval: { wait: '3s' } },
              { grant: 'api', methods: ['POST'], paths: ['/retry/**'], approve: 'human', approval: { wait: 0 } },
            ],
          },
        },
      },
    });
    bot = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    callbackUrl = `${adminClient(proxy).base}/slack/interactivity`;
  });

  afterAll(async () => {
    await bot?.close();
    await proxy?.stop();
    for (const text of slack.received) expect(findLeak(text, GRANT_SECRET), 'the grant’s secret sent to Slack').toBeUndefined();
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs, ...outputs])
      for (const secret of [GRANT_SECRET, BOT, SIGNING]) expect(findLeak(text, secret), 'a secret in the audit log, logs or answers').toBeUndefined();
    await upstream?.close();
    await slack?.close();
  });

  function send(path: string, body: string, type = 'application/json', headers: Record<string, string> = {}, host = 'api.example.test') {
    return request(`https://${host}:${upstream.port}${path}`, {
      dispatcher: bot,
      method: 'POST',
      headers: { 'content-type': type, ...headers },
      body,
    }).then(async (r) => {
      const text = await r.body.text();
      outputs.push(text);
      return { status: r.statusCode, code: r.headers['x-keyway-error'], text };
    });
  }
  const messageFor = (path: string) =>
    waitFor(() => [...slack.messages.values()].find((m) => JSON.stringify(m.blocks).includes(`Path: ${path}"`)), `the message for ${path}`, 15_000);
  const buttonOf = (m: SlackMessage, action: string) => m.blocks.find((b) => b.type === 'actions')!.elements!.find((e) => e.action_id === action)!.value!;
  const sent = (path: string) => upstream.seen.filter((s) => s.url?.split('?')[0] === path).length;
  const approval = async (path: string) =>
    (
      (await adminClient(proxy).call('GET', '/api/approvals?state=all')).body as { approvals: Array<{ id: string; path: string; state: string }> }
    ).approvals.filter((a) => a.path === path);

  /** A POST written by hand to the admin listener: headers exactly as given (case, repeats). */
  function rawPost(lines: string[], body: string): Promise<string> {
    const url = new URL(callbackUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          [`POST ${url.pathname} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`, ...lines, '', body].join(
            '\r\n',
          ),
        );
      });
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
      });
      socket.on('end', () => resolve(text.split('\r\n')[0] ?? ''));
      socket.on('error', reject);
    });
  }

  it('forged, altered, stale, future, duplicated and misparsed callbacks are refused and decide nothing', async () => {
    const path = '/held/forged';
    const held = send(path, '{"head":"feature"}');
    const m = await messageFor(path);
    const click = { user: ALICE, ts: m.ts, action: 'keyway.approve_once' };
    const body = `payload=${encodeURIComponent(JSON.stringify(slack.blockActions(click)))}`;
    const now = Math.floor(Date.now() / 1000);
    const good = slackSignature(SIGNING, now, body);
    // A guessed secret; a signature over another body; the right one in upper case.
    expect((await slack.clickByHttp(callbackUrl, click, { secret: 'guessed' })).status).toBe(401);
    const other = `payload=${encodeURIComponent(JSON.stringify(slack.blockActions({ ...click, user: MALLORY })))}`;
    expect((await slack.clickByHttp(callbackUrl, {}, { rawBody: body, timestamp: now, signature: slackSignature(SIGNING, now, other) })).status).toBe(401);
    expect((await slack.clickByHttp(callbackUrl, {}, { rawBody: body, timestamp: now, signature: good.toUpperCase() })).status).toBe(401);
    expect((await slack.clickByHttp(callbackUrl, {}, { rawBody: `${body}&`, timestamp: now, signature: good })).status).toBe(401);
    // Stale and future timestamps, each correctly signed.
    for (const ts of [Math.floor(Date.now() / 1000) - 360, Math.floor(Date.now() / 1000) + 360])
      expect((await slack.clickByHttp(callbackUrl, click, { timestamp: ts })).status).toBe(401);
    // Header tricks: odd case is the same header; a second signature or timestamp makes it no signature at all.
    expect(await rawPost([`X-SLACK-REQUEST-TIMESTAMP: ${now}`, `x-Slack-Signature: v0=${'0'.repeat(64)}`], body)).toMatch(/ 401 /);
    expect(await rawPost([`X-Slack-Request-Timestamp: ${now}`, `X-Slack-Signature: v0=${'0'.repeat(64)}`, `X-Slack-Signature: ${good}`], body)).toMatch(
      / 401 /,
    );
    expect(await rawPost([`X-Slack-Request-Timestamp: ${now - 1000}`, `X-Slack-Request-Timestamp: ${now}`, `X-Slack-Signature: ${good}`], body)).toMatch(
      / 401 /,
    );
    // Signed, but not the one form field: JSON as the body, the field twice, a second field.
    const json = JSON.stringify({ payload: slack.blockActions(click) });
    const doubled = `${body}&${body}`;
    const extra = `${body}&token=x`;
    for (const raw of [json, doubled, extra]) {
      expect((await slack.clickByHttp(callbackUrl, {}, { rawBody: raw, timestamp: now, signature: slackSignature(SIGNING, now, raw) })).status).toBe(400);
    }
    expect(sent(path)).toBe(0);
    expect((await approval(path))[0]?.state).toBe('pending');
    // The genuine click, in odd header case, is taken once; its replay does nothing more.
    expect(await rawPost([`X-SLACK-REQUEST-TIMESTAMP: ${now}`, `x-slack-SIGNATURE: ${good}`, 'Content-Type: application/x-www-form-urlencoded'], body)).toMatch(
      / 200 /,
    );
    expect((await held).status).toBe(200);
    expect((await slack.clickByHttp(callbackUrl, {}, { rawBody: body, timestamp: now, signature: good })).status).toBe(200);
    expect(sent(path)).toBe(1);
  });

  it('an unmapped clicker, a button aimed at another approval’s message, and a button carrying another body’s hash decide nothing', async () => {
    const x = send('/held/x', '{"amount":1}');
    const y = send('/held/y', '{"amount":1000}');
    const mx = await messageFor('/held/x');
    const my = await messageFor('/held/y');
    const before = slack.ephemerals.length;
    // Mallory can read the channel and click: refused, told so.
    expect((await slack.clickByHttp(callbackUrl, { user: MALLORY, ts: my.ts, action: 'keyway.approve_once' })).status).toBe(200);
    // Alice's click on X's message carrying Y's button: not on Y's message.
    await slack.clickByHttp(callbackUrl, { user: ALICE, ts: mx.ts, action: 'keyway.approve_once', value: buttonOf(my, 'keyway.approve_once') });
    // Y's message with Y's id but X's body hash: another body.
    const xHash = buttonOf(mx, 'keyway.approve_once').split(':')[1];
    const yId = buttonOf(my, 'keyway.approve_once').split(':')[0];
    await slack.clickByHttp(callbackUrl, { user: ALICE, ts: my.ts, action: 'keyway.approve_once', value: `${yId}:${xHash}` });
    // A window Y's rule never gave.
    await slack.clickByHttp(callbackUrl, { user: ALICE, ts: my.ts, action: 'keyway.approve_window', value: buttonOf(my, 'keyway.approve_once') });
    await waitFor(() => (slack.ephemerals.length >= before + 4 ? true : undefined), 'four refusals');
    expect(slack.ephemerals.slice(before).map((e) => e.text)).toEqual([
      expect.stringContaining('not one of keyway’s approvers'),
      expect.stringContaining('not on keyway’s message'),
      expect.stringContaining('another body'),
      expect.stringContaining('no window'),
    ]);
    expect([sent('/held/x'), sent('/held/y')]).toEqual([0, 0]);
    expect((await approval('/held/y'))[0]?.state).toBe('pending');
    // Denied properly (no trigger: no modal), both end; nothing went upstream.
    for (const m of [mx, my]) {
      const p = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.deny' });
      delete p['trigger_id'];
      await slack.clickByHttp(callbackUrl, p);
    }
    expect((await x).code).toBe('approval_denied');
    expect((await y).code).toBe('approval_denied');
    expect([sent('/held/x'), sent('/held/y')]).toEqual([0, 0]);
  });

  it('forged Deny modal submissions: another view, an unmapped submitter, another channel, a replay: none decides', async () => {
    const path = '/held/modal';
    const held = send(path, '{"x":1}');
    const m = await messageFor(path);
    const views = slack.views.length;
    await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.deny' });
    const modal = await waitFor(() => slack.views[views], 'the Deny modal');
    const before = slack.ephemerals.length;
    const real = slack.viewSubmission(modal.view, ALICE, 'no');
    const other = structuredClone(real) as { view: Record<string, unknown> };
    other.view['callback_id'] = 'someone.else';
    const byMallory = slack.viewSubmission(modal.view, MALLORY, 'no');
    const elsewhere = structuredClone(real) as { view: Record<string, unknown> };
    elsewhere.view['private_metadata'] = String(real['view'] && (real['view'] as Record<string, unknown>)['private_metadata']).replace(
      'C0APPROVE',
      'C0ELSEWHERE',
    );
    for (const p of [other, byMallory, elsewhere]) expect((await slack.clickByHttp(callbackUrl, p)).status).toBe(200);
    await waitFor(() => slack.ephemerals.slice(before).find((e) => e.user === MALLORY), 'the refusal to Mallory');
    expect((await approval(path))[0]?.state).toBe('pending');
    const taken = await slack.clickByHttp(callbackUrl, real);
    expect((await held).code).toBe('approval_denied');
    // A replay of the submission (within its 5 minutes) finds it decided: nothing changes.
    await slack.clickByHttp(callbackUrl, {}, { rawBody: taken.rawBody, timestamp: taken.timestamp, signature: taken.signature });
    expect((await approval(path))[0]?.state).toBe('denied');
    expect(sent(path)).toBe(0);
  });

  it('the grant’s secret, planted anywhere a preview could show it, never reaches Slack', async () => {
    const b64 = Buffer.from(GRANT_SECRET).toString('base64');
    const cases: Array<[string, string, string, Record<string, string>]> = [
      ['/held/leak/json', JSON.stringify({ note: GRANT_SECRET, memo: `see ${b64}`, nested: { x: [`prefix ${GRANT_SECRET} suffix`] } }), 'application/json', {}],
      ['/held/leak/form', `comment=${encodeURIComponent(GRANT_SECRET)}&other=${encodeURIComponent(b64)}`, 'application/x-www-form-urlencoded', {}],
      ['/held/leak/raw', `{"note": "${GRANT_SECRET}", "note": 1}`, 'application/json', {}],
      ['/held/leak/purpose', '{}', 'application/json', { 'x-keyway-purpose': `merging with ${GRANT_SECRET}` }],
      [`/held/leak/query?token=${GRANT_SECRET}&b=${b64}`, '{}', 'application/json', {}],
      [`/held/leak/path/${GRANT_SECRET}`, '{}', 'application/json', {}],
      ['/held/leak/multipart', `--b\r\ncontent-disposition: form-data; name="note"\r\n\r\n${GRANT_SECRET}\r\n--b--\r\n`, 'multipart/form-data; boundary=b', {}],
    ];
    const waiting = cases.map(([path, body, type, headers]) => send(path, body, type, headers));
    for (const [path] of cases) {
      const m = await messageFor(path.split('?')[0]!.replace(GRANT_SECRET, '[redacted by keyway]'));
      const p = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.deny' });
      delete p['trigger_id'];
      await slack.clickByHttp(callbackUrl, p);
    }
    for (const w of waiting) expect((await w).code).toBe('approval_denied');
    // What Slack was told: no form of the secret (afterAll searches every byte again).
    for (const text of slack.received) {
      expect(findLeak(text, GRANT_SECRET)).toBeUndefined();
      expect(text).not.toContain(b64.slice(0, 24));
    }
  });

  it('Slack down: the hold waits its 3 s and expires; nothing is approved', async () => {
    slack.down = true;
    try {
      const r = await send('/short/down', '{}');
      expect(r).toMatchObject({ status: 403, code: 'approval_expired' });
      expect(sent('/short/down')).toBe(0);
    } finally {
      slack.down = false;
    }
    expect((await approval('/short/down'))[0]?.state).toBe('expired');
  });

  it('wait: 0: a yes for once is spent by the retry with the same body, host and query only', async () => {
    const path = '/retry/merge';
    const first = await send(`${path}?dry_run=true`, '{"branch":"main"}');
    expect(first.code).toBe('approval_required');
    const m = await messageFor(path);
    await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    // waitForAsync: the click is taken after Slack's answer (http.ts), and a promise is never undefined.
    await waitForAsync(async () => ((await approval(path))[0]?.state === 'approved' ? true : undefined), 'the yes');
    // The same shape, another body: asked anew. The same body to another host of the grant, or with another query: asked anew.
    expect((await send(`${path}?dry_run=true`, '{"branch":"prod"}')).code).toBe('approval_required');
    expect(await send(`${path}?dry_run=true`, '{"branch":"main"}', 'application/json', {}, 'other.example.test')).toMatchObject({ code: 'approval_required' });
    expect((await send(`${path}?dry_run=false`, '{"branch":"main"}')).code).toBe('approval_required');
    expect(sent(path)).toBe(0);
    // The very request approved goes, once.
    expect((await send(`${path}?dry_run=true`, '{"branch":"main"}')).status).toBe(200);
    expect((await send(`${path}?dry_run=true`, '{"branch":"main"}')).code).toBe('approval_required');
    expect(sent(path)).toBe(1);
  });
  it('a flood of holds: at most max_messages_per_minute posted, one summary counts the rest, none approved', async () => {
    const posted = () => slack.calls.filter((c) => c.method === 'chat.postMessage' && String(c.body['text']).startsWith('keyway approval'));
    const postedBefore = posted().length;
    const flood = Array.from({ length: 8 }, (_, i) => send(`/short/flood/${i}`, '{}'));
    const results = await Promise.all(flood);
    // Held until they expire, or past approvals.max_pending_per_agent refused at once: never approved.
    for (const r of results) expect(['approval_expired', 'rate_limited']).toContain(r.code);
    expect(upstream.seen.filter((s) => s.url?.startsWith('/short/flood/')).length).toBe(0);
    // The earlier tests posted about ten within the minute: the flood gets the rest of the 12, and a summary.
    const floodPosts = posted().length - postedBefore;
    expect(floodPosts).toBeLessThanOrEqual(12);
    if (floodPosts < 8) expect(slack.calls.some((c) => /more approvals? waiting/.test(String(c.body['text'])))).toBe(true);
  });
});
