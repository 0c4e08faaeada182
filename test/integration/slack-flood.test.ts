// Slack approvals (issue 90), a flood across processes: two Slack rooms on one store (two replicas,
// or a primary and another keyway) post at most max_messages_per_minute between them, and one
// summary message counts what neither posted: approvals, anomaly holds among them, and anomaly
// alerts (plain messages without buttons) waiting their turn. The minute's posts and the summary are
// a store record (approvals/slack/flood.ts), as each approval's message is. Real desk, real file
// store, the loopback stand-in of Slack.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApprovalAsk, ApprovalDesk } from '../../src/approvals/desk.ts';
import { slackAlertKeeper } from '../../src/approvals/slack/alerts.ts';
import { SlackRoom } from '../../src/approvals/slack/room.ts';
import { slackWebApi } from '../../src/approvals/slack/web-api.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { type SlackStandin, startSlackStandin } from '../helpers/slack-standin.ts';
import { waitFor } from '../helpers/wait.ts';

const BOT = 'xoxb-flood-bot';
const CHANNEL = 'C0FLOOD';

describe('Slack approvals: a flood counted across two rooms on one store', () => {
  let slack: SlackStandin;
  let dir: string;
  let stores: Store[];
  let desk: ApprovalDesk;
  let rooms: SlackRoom[];
  let perMinute = 3;
  // The rooms' clock stands still: however slow the machine, the test stays in one minute.
  const minute = Date.now();

  beforeAll(async () => {
    slack = await startSlackStandin({ botToken: BOT, appToken: 'xapp-flood', signingSecret: 'flood-signing' });
    dir = mkdtempSync(join(tmpdir(), 'keyway-slack-flood-'));
    const key = randomBytes(32);
    // Two handles on one store file: what two keyways on one home (or two replicas) have.
    stores = [await Store.open(join(dir, 'store.json'), key), await Store.open(join(dir, 'store.json'), key)];
    const logger = pino({ level: 'silent' });
    desk = new ApprovalDesk({
      store: stores[0]!,
      audit: { write: async () => {} },
      logger,
      limits: () => ({ max_pending: 100, max_pending_per_agent: 50, max_held_body: 1 << 20, pending_ttl: 900_000 }),
      now: () => new Date(),
      holder: { host: 'test', pid: process.pid, started_at: new Date().toISOString() },
      notify: () => {
        for (const r of rooms) r.storeChanged();
      },
    });
    await desk.start();
    rooms = stores.map(
      (store) =>
        new SlackRoom({
          settings: () => ({ channel: CHANNEL, approvers: { U0ALICE: 'alice' }, max_messages_per_minute: perMinute }),
          botToken: () => BOT,
          api: slackWebApi(slack.apiUrl, undefined),
          store,
          desk: { get: (id) => desk.get(id), decide: (id, asked) => desk.decide(id, asked) },
          logger,
          now: () => new Date(minute),
        }),
    );
    for (const r of rooms) r.start();
    // As keyway's own store watch does (app/store-watch.ts): each handle takes in the other's writes.
    for (const [i, store] of stores.entries()) store.watch(() => rooms[i]!.storeChanged(), 100);
  });

  afterAll(async () => {
    for (const r of rooms ?? []) await r.stop();
    await desk?.stop();
    for (const store of stores ?? []) store.close();
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  function ask(rule: string, signals?: Array<{ name: string; why: string }>): string {
    const path = `/flood/${++n}`;
    const request: ApprovalAsk = {
      agent: 'bot',
      grant: 'api',
      method: 'POST',
      path,
      rule: { rule, waitMs: 0, windowMs: 0, paths: undefined, ...(signals ? { signals } : {}) },
      host: 'api.example.test',
      port: 443,
      purpose: undefined,
      body: Buffer.from('{}'),
      contentType: 'application/json',
      onClientGone: () => () => {},
    };
    desk.pass(request).catch(() => {});
    return path;
  }
  const posts = () => slack.calls.filter((c) => c.method === 'chat.postMessage');
  const summaries = () => [...slack.messages.values()].filter((m) => m.text.startsWith('keyway: '));

  it('posts at most the bound between both rooms; one summary counts the approvals, anomaly holds and alerts not posted', async () => {
    const paths = [
      ...Array.from({ length: 6 }, () => ask('agents.bot.rules[0] (POST approve: human)')),
      ask('anomaly: burst', [{ name: 'burst', why: '40 requests in 1m, baseline 4' }]),
      ask('anomaly: first_use', [{ name: 'first_use', why: 'first use of grant api by this agent' }]),
    ];
    await waitFor(() => desk.list().filter((r) => r.state === 'pending').length === 8 || undefined, 'the approvals asked');
    // Two alerts, raised in another process (a worker): kept in the store for the rooms.
    for (const [i, keep] of stores
      .map((store) =>
        slackAlertKeeper(
          store,
          () => new Date(),
          (err) => expect.fail(err.message),
        ),
      )
      .entries()) {
      keep({
        type: 'keyway.anomaly.alert',
        alert: {
          agent: `ci${i}`,
          grant: 'api',
          method: 'DELETE',
          host: 'api.example.test',
          path_class: '/repos/{id}',
          signals: [{ name: 'new_method', why: 'method DELETE never used on grant api' }],
          at: new Date().toISOString(),
        },
      });
    }
    // Which three are posted depends on which room saw what first (each reads the store as of its
    // last look); that three are, and that the summary counts the other seven, does not.
    const counted = (text: string) =>
      Number(/(\d+) more approvals? waiting/.exec(text)?.[1] ?? 0) + Number(/(\d+) unusual-use alerts? not posted/.exec(text)?.[1] ?? 0);
    const summary = await waitFor(() => summaries().find((m) => counted(m.text) === 7), 'one summary counting what neither room posted', 15_000).catch(
      (err: Error) => {
        throw new Error(
          `${err.message}: posted ${JSON.stringify([...slack.messages.values()].map((m) => m.text))}; store ${JSON.stringify(stores[0]!.get('slack-flood'))}`,
        );
      },
    );
    for (const r of rooms) await r.settled();
    for (const r of rooms) await r.settled();
    // The bound, shared: three messages posted between the two rooms, then one summary, and only one.
    expect(posts().length).toBe(3 + 1);
    expect(summaries()).toHaveLength(1);
    const posted = [...slack.messages.values()].filter((m) => m !== summary);
    expect(posted.every((m) => paths.some((p) => JSON.stringify(m.blocks).includes(`Path: ${p}"`)) || m.text.startsWith('keyway noticed'))).toBe(true);
    const alertsLeft = 2 - posted.filter((m) => m.text.startsWith('keyway noticed')).length;

    // Answered elsewhere: the summary is updated in place (by whichever room sees it first), to the alerts left.
    for (const r of desk.list().filter((x) => x.state === 'pending')) await desk.decide(r.id, { approve: false, by: 'token', now: new Date() });
    await waitFor(() => (/\d+ more approval/.test(summary.text) ? undefined : true), 'the summary down to the alerts');
    expect(summary.text).toContain(alertsLeft === 0 ? 'no approvals are waiting unposted' : `${alertsLeft} unusual-use alert`);
    expect(summaries()).toHaveLength(1);

    // Room again (a new minute's worth): the alerts are posted, plain, without buttons, once each.
    perMinute = 50;
    for (const r of rooms) r.storeChanged();
    const alerts = await waitFor(() => {
      const found = [...slack.messages.values()].filter((m) => m.text.startsWith('keyway noticed unusual use'));
      return found.length >= 2 ? found : undefined;
    }, 'the alerts posted');
    await waitFor(() => (summary.text.includes('no approvals are waiting unposted') ? true : undefined), 'the summary at zero');
    for (const r of rooms) await r.settled();
    expect([...slack.messages.values()].filter((m) => m.text.startsWith('keyway noticed unusual use'))).toHaveLength(2);
    for (const m of alerts) {
      expect(m.blocks.some((b) => b.type === 'actions')).toBe(false);
      expect(JSON.stringify(m.blocks)).toContain('Signal: new_method (method DELETE never used on grant api)');
      expect(JSON.stringify(m.blocks)).toContain('Path class: /repos/{id}');
    }
    // Posted alerts are let go: read under the lock (the file as it is now).
    expect(await stores[0]!.update((draft) => draft.entries('slack-alert:'))).toEqual([]);
  });
});
