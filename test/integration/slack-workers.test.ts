// Slack approvals under proxy.workers: 2 (issue 90, item 1), through `keyway start` in a child
// process: the workers serve the proxy and hold the requests; the primary, which owns the admin
// listener, runs the Slack room. A request held in a worker is posted by the primary, and a click
// (HTTP interactivity, signed, to the primary's admin listener) releases it in the worker, through
// the store. Attacked: a worker killed while it held a request, replaced by a new one: a click on
// that request's message afterwards approves nothing (the approval was interrupted), is refused
// and audited, and the message says so; the agent's retry asks anew.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { cleanEnv, onePerRequest, runCli } from '../helpers/keyway.ts';
import { freePort } from '../helpers/ports.ts';
import { type SlackMessage, type SlackStandin, startSlackStandin } from '../helpers/slack-standin.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const API_TOKEN = `canary-slack-workers-${randomBytes(8).toString('hex')}`;
const BOT_KEY = `bot-${randomBytes(12).toString('hex')}`;
const BOT = `xoxb-workers-${randomBytes(6).toString('hex')}`;
const SIGNING = `signing-${randomBytes(8).toString('hex')}`;
const ALICE = 'U0ALICE';

interface WorkerRow {
  index: number;
  pid: number;
  connections: number | null;
  requests: number | null;
  restarts: number;
}

describe('Slack approvals under proxy.workers: 2', () => {
  let slack: SlackStandin;
  let upstream: TestUpstream;
  let child: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  let ca: string;
  let callbackUrl: string;

  beforeAll(async () => {
    slack = await startSlackStandin({ botToken: BOT, appToken: 'xapp-unused', signingSecret: SIGNING });
    upstream = await startUpstream({ requireAuthorization: `Bearer ${API_TOKEN}` });
    home = writeChildHome({
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' } },
      agents: {
        bot: {
          key: 'env:BOT_KEY',
          grants: ['api'],
          rules: [{ grant: 'api', methods: ['POST'], approve: 'human', approval: { wait: '60s' } }],
        },
      },
      approvals: {
        slack: {
          bot_token: 'env:SLACK_BOT',
          signing_secret: 'env:SLACK_SIGNING',
          channel: 'C0APPROVE',
          mode: 'http',
          approvers: { [ALICE]: 'alice' },
          api_url: slack.apiUrl,
        },
      },
    });
    const yamlPath = join(home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(yamlPath, 'utf8')) as { proxy: Record<string, unknown> };
    config.proxy['workers'] = 2;
    writeFileSync(yamlPath, stringify(config));
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, BOT_KEY, SLACK_BOT: BOT, SLACK_SIGNING: SIGNING });
    const adminPort = await freePort();
    child = await startChildProxy({ cli: SRC_CLI, home, env, adminPort });
    callbackUrl = `http://127.0.0.1:${adminPort}/slack/interactivity`;
    ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
  });

  afterAll(async () => {
    if (child !== undefined && child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    if (child !== undefined) {
      const texts = [child.stdout() + child.stderr(), readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8'), ...slack.received];
      for (const text of texts) expect(text, 'a secret in an output, the audit log or Slack').not.toContain(API_TOKEN);
      for (const text of texts.slice(0, 2)) for (const s of [BOT, SIGNING]) expect(text).not.toContain(s);
    }
    await upstream?.close();
    await slack?.close();
  });

  /** One request on a connection of its own (a new CONNECT), so that the kernel picks a worker for each. */
  async function held(path: string): Promise<{ status: number; code: string | undefined }> {
    const dispatcher = new ProxyAgent({ uri: `http://bot:${BOT_KEY}@127.0.0.1:${child.port}`, requestTls: { ca: [ca] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, {
        dispatcher,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path }),
        headersTimeout: 90_000,
        bodyTimeout: 90_000,
      });
      await res.body.dump();
      const code = res.headers['x-keyway-error'];
      return { status: res.statusCode, code: typeof code === 'string' ? code : undefined };
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
  }
  async function workers(): Promise<WorkerRow[]> {
    const out = await runCli(['status', '--json', '--home', home], env);
    expect(out.code, out.stderr).toBe(0);
    return (JSON.parse(out.stdout) as { workers: WorkerRow[] }).workers;
  }
  const messageFor = (path: string, not?: SlackMessage) =>
    waitFor(
      () => [...slack.messages.values()].find((m) => m !== not && JSON.stringify(m.blocks).includes(`Path: ${path}"`)),
      `the message for ${path}`,
      30_000,
    );
  const outcome = (m: SlackMessage) => JSON.stringify(m.blocks.find((b) => b.block_id === 'keyway-outcome') ?? null);
  const sent = (path: string) => upstream.seen.filter((s) => s.url === path).length;
  const audit = () => onePerRequest(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8'));

  it('requests held in the workers are posted by the primary; a click at the admin listener releases each in its worker, once', async () => {
    const paths = ['/merge/a', '/merge/b', '/merge/c'];
    const answers = paths.map((p) => held(p));
    const messages = await Promise.all(paths.map((p) => messageFor(p)));
    for (const p of paths) expect(sent(p)).toBe(0);
    // Held in the workers (the primary serves no proxied request), posted once each by the primary.
    const rows = await workers();
    expect(rows.reduce((n, w) => n + (w.connections ?? 0), 0)).toBeGreaterThanOrEqual(paths.length);
    for (const m of messages) expect((await slack.clickByHttp(callbackUrl, { user: ALICE, ts: m.ts, action: 'keyway.approve_once' })).status).toBe(200);
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual([200, 200, 200]);
    for (const p of paths) expect(sent(p)).toBe(1);
    for (const m of messages) await waitFor(() => (outcome(m).includes('Approved once by slack:alice') ? true : undefined), 'the message updated');
    expect(slack.calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(paths.length);
  });

  it('a click for a hold whose worker was killed and replaced approves nothing: refused, audited, the message says why', async () => {
    const answer = held('/merge/killed');
    const m = await messageFor('/merge/killed');
    // Alice's click, made while the buttons were there and arriving only after the worker's end
    // (Slack retrying, a slow network): the message no longer has buttons by then.
    const late = slack.blockActions({ user: ALICE, ts: m.ts, action: 'keyway.approve_once' });
    const holder = await waitForAsync(async () => (await workers()).find((w) => (w.connections ?? 0) > 0), 'the worker holding the request', 30_000);
    process.kill(holder.pid, 'SIGKILL');
    const lost = await answer.then(
      (r) => `answered ${r.status}`,
      () => 'cut',
    );
    expect(lost).toBe('cut');
    await waitForAsync(
      async () => {
        const row = (await workers()).find((w) => w.index === holder.index);
        return row && row.pid !== holder.pid && row.restarts === 1 && row.requests !== null ? row : undefined;
      },
      'a new worker in its place',
      45_000,
    );
    // The new worker found the request's holder gone: the approval is interrupted, and the message says so.
    await waitFor(() => (outcome(m).includes('Interrupted') ? true : undefined), 'the message updated to interrupted', 30_000);
    const click = await slack.clickByHttp(callbackUrl, late);
    expect(click.status).toBe(200);
    await waitFor(() => slack.ephemerals.find((e) => e.user === ALICE && e.text.includes('interrupted')), 'the refusal told to the clicker').catch(
      (err: Error) => {
        throw new Error(
          `${err.message}: told ${JSON.stringify(slack.ephemerals)}; audited ${JSON.stringify(audit().filter((l) => l['action'] === 'slack.callback'))}`,
        );
      },
    );
    const refused = await waitFor(
      () => audit().find((l) => l['action'] === 'slack.callback' && String(l['message']).includes('is interrupted')),
      'the refused click audited',
    );
    expect(refused).toMatchObject({ decision: 'admin', code: 'conflict', actor: `slack:${ALICE}` });
    expect(sent('/merge/killed')).toBe(0);
    // The agent's retry is a new request: asked anew, a new message; the old click covers nothing.
    const retry = held('/merge/killed');
    const again = await messageFor('/merge/killed', m);
    expect(sent('/merge/killed')).toBe(0);
    await slack.clickByHttp(callbackUrl, { user: ALICE, ts: again.ts, action: 'keyway.approve_once' });
    expect((await retry).status).toBe(200);
    expect(sent('/merge/killed')).toBe(1);
  });
});
