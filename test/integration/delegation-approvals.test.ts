// Issue 89, "Approvals name the chain": a parent's `approve: human` rule asks a person for its
// child's request too (the child is never let past a yes its parent needs), and everything a person
// decides from names the chain: the approval record and the admin API, `keyway approvals list` and
// `show`, the approvals webhook, the approval's audit line, and the dashboard's inbox (in chromium).
// A yes given to the child covers the child alone; the root agent's own approvals carry no chain.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

const SLOW = 90_000;
const SECRET = `${CANARY}-deleg-approvals`;
const LEAD_KEY = 'lead-key-approvals-0123456';

interface Approval {
  id: string;
  agent: string;
  chain?: string[];
  state: string;
  path: string;
  rule: string;
}

describe('approvals of a delegated agent name its chain', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let receiver: Server;
  let childUrl = '';
  let browser: Browser | undefined;
  let watched: WatchedPage | undefined;
  const notified: Array<{ approval: Record<string, unknown> }> = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        notified.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { approval: Record<string, unknown> });
        res.end('ok');
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { LEAD_KEY },
      config: {
        approvals: { notify: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` },
        agents: {
          lead: {
            key: 'env:LEAD_KEY',
            grants: ['api'],
            rules: [
              { grant: 'api', methods: ['GET'] },
              { grant: 'api', methods: ['POST'], paths: ['/pay/**'], approve: 'human', approval: { wait: 0 } },
              { grant: 'api', methods: ['PUT'], paths: ['/why/**'], require_purpose: true },
            ],
          },
        },
      },
    });
    admin = adminClient(proxy);
    const minted = await proxy.cli(['agents', 'delegate', 'lead', '--name', 'worker', '--json']);
    expect(minted.code, minted.stderr).toBe(0);
    childUrl = (JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url;
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    const texts = [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs, JSON.stringify(notified)];
    for (const text of texts) {
      expect(findLeak(text, SECRET), 'the grant secret in an output').toBeUndefined();
      expect(text.includes(new URL(childUrl).password), "the child's key in an output").toBe(false);
    }
    await proxy?.stop();
    await upstream?.close();
    receiver?.close();
  });

  async function call(proxyUrl: string, method: string, path: string) {
    const url = new URL(proxyUrl);
    const dispatcher = new ProxyAgent({
      uri: `http://${url.host}`,
      token: `Basic ${Buffer.from(`${url.username}:${decodeURIComponent(url.password)}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
    });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, {
        dispatcher,
        method: method as 'POST',
        body: method === 'POST' ? '{}' : undefined,
      });
      const text = await res.body.text();
      outputs.push(text);
      return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
    } catch {
      return { status: 407, code: undefined, text: '' };
    } finally {
      await dispatcher.close();
    }
  }
  const lead = () => `http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`;
  const listed = async (): Promise<Approval[]> => {
    const r = await admin.call('GET', '/api/approvals?state=all');
    outputs.push(r.text);
    return (r.body as { approvals: Approval[] }).approvals;
  };

  it("the parent's approve: human rule asks a person for the child's request; the record, API, CLI and webhook name the chain", async () => {
    // Served once the proxy has read the store; a GET the parent allows outright.
    await waitForAsync(async () => ((await call(childUrl, 'GET', '/echo')).status === 200 ? true : undefined), 'the child to be served');
    const sent = upstream.seen.filter((s) => s.url === '/pay/7').length;
    const asked = await call(childUrl, 'POST', '/pay/7');
    expect(asked.status, asked.text).toBe(403);
    expect(asked.code).toBe('approval_required');
    expect(upstream.seen.filter((s) => s.url === '/pay/7').length, 'nothing sent before a yes').toBe(sent);

    const record = (await listed()).find((a) => a.path === '/pay/7')!;
    expect(record).toMatchObject({ agent: 'worker', chain: ['lead', 'worker'], state: 'pending' });
    expect(record.rule).toContain('agents.lead.rules');
    const hook = await waitFor(() => notified.find((n) => n.approval['id'] === record.id), 'the webhook');
    expect(hook.approval).toMatchObject({ agent: 'worker', chain: ['lead', 'worker'] });

    const list = await proxy.cli(['approvals', 'list']);
    outputs.push(list.stdout);
    expect(list.stdout).toMatch(new RegExp(`${record.id}\\s+pending\\s+lead > worker\\s+api`));
    const show = await proxy.cli(['approvals', 'show', record.id]);
    expect(show.stdout).toContain('agent worker (delegated: lead > worker) on grant api');
    const json = JSON.parse((await proxy.cli(['approvals', 'show', record.id, '--json'])).stdout) as Approval;
    expect(json.chain).toEqual(['lead', 'worker']);

    // The root agent's own request asks too, under its own record, with no chain.
    const leadAsked = await call(lead(), 'POST', '/pay/8');
    expect(leadAsked.code).toBe('approval_required');
    const leadRecord = (await listed()).find((a) => a.path === '/pay/8')!;
    expect(leadRecord.agent).toBe('lead');
    expect(leadRecord.chain).toBeUndefined();
    expect((await waitFor(() => notified.find((n) => n.approval['id'] === leadRecord.id), 'the webhook')).approval).not.toHaveProperty('chain');
  });

  it("a yes for the child lets the child's retry through, and its audit lines carry the chain; the parent's request still waits", async () => {
    const record = (await listed()).find((a) => a.path === '/pay/7')!;
    const approved = await proxy.cli(['approvals', 'approve', record.id]);
    expect(approved.code, approved.stderr).toBe(0);
    // The CLI wrote the store from another process: the proxy sees the yes within its change feed.
    const retry = await waitForAsync(async () => {
      const r = await call(childUrl, 'POST', '/pay/7');
      return r.code === 'approval_required' ? undefined : r;
    }, "the child's retry let through");
    expect(retry.status, retry.text).toBe(200);
    const lines = proxy.auditLines().filter((l) => (l['approval'] as { id?: string } | undefined)?.id === record.id);
    expect(lines.filter((l) => l['decision'] === 'approval').length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line['chain'], JSON.stringify(line)).toEqual(['lead', 'worker']);
    // The parent's own POST on the same path is not covered by the child's yes.
    const parent = await call(lead(), 'POST', '/pay/7');
    expect(parent.code).toBe('approval_required');
  });

  it("the parent's require_purpose rule wants a purpose of the child too", async () => {
    const refused = await call(childUrl, 'PUT', '/why/1');
    expect(refused.status, refused.text).toBe(400);
    expect(refused.code).toBe('purpose_required');
    expect(refused.text).toContain('agents.lead.rules[2]');
  });

  it(
    "the dashboard's inbox names the chain on the card and in the recent answers",
    async () => {
      await call(childUrl, 'POST', '/pay/9');
      browser = await launchChromium();
      watched = await openPage(browser);
      const { page } = watched;
      await signInAt(page, admin, 'approvals', 'Approvals');
      const card = page.locator('.card.approval[data-path="/pay/9"]');
      await card.waitFor();
      expect(await card.locator('header .muted').textContent()).toContain('agent lead > worker · grant api');
      const done = page.locator('#approval-recent tr[data-state="used"]');
      await done.first().waitFor();
      expect(await done.first().locator('td[data-label="Agent"]').textContent()).toBe('lead > worker');
      expect(await watched.violations()).toEqual([]);
      expect(await page.content()).not.toContain(CANARY);
    },
    SLOW,
  );
});
