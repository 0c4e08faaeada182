// The dashboard's approvals inbox in a real browser (Debian's chromium through playwright-core)
// against a running keyway (issue 26, "Done when"): an agent's POST is held; a person sees it in the
// inbox with its purpose and a redacted body preview, approves it for 15 minutes; the held POST goes
// through, the agent's next POST on that path passes without asking, a POST on another path is held
// again; the person denies it with a reason, which the agent gets with 403 approval_denied; a request
// nobody answers gets 403 approval_expired. No CSP violation, no canary on the page, and the
// dashboard's answers are in the audit chain as `by: session`, which verifies.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 60_000;
const SECRET = `${CANARY}-inbox`;
const AGENT_SECRET = `${CANARY}-password-in-body`;

describe('the approvals inbox in chromium', () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  const answers: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({
      requireAuthorization: `Bearer ${SECRET}`,
      handler: (req, res) => {
        if (!req.url?.startsWith('/repos/') && !req.url?.startsWith('/short/')) return false;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"merged":true}');
        return true;
      },
    });
    proxy = await startProxy({
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key-4c1d' },
      config: {
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['github'],
            rules: [
              { grant: 'github', methods: ['POST'], paths: ['/repos/**'], approve: 'human', approval: { wait: '30s' } },
              { grant: 'github', methods: ['DELETE'], paths: ['/short/**'], approve: 'human', approval: { wait: '2s' } },
            ],
          },
        },
      },
    });
    admin = adminClient(proxy);
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const secret of [SECRET, AGENT_SECRET]) for (const text of [audit, ...answers, ...proxy.logs]) expect(findLeak(text, secret)).toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  /** The agent: its own connection per request, so that one held request never queues another. */
  async function agentCall(method: string, path: string, body?: unknown) {
    const dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-4c1d@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, {
        dispatcher,
        method: method as 'POST',
        headers: { 'content-type': 'application/json', 'x-keyway-purpose': 'merge the release PR' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      answers.push(text);
      return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
    } finally {
      await dispatcher.close();
    }
  }

  async function noViolationsAndNoCanary(): Promise<void> {
    expect(await watched.violations()).toEqual([]);
    const html = await watched.page.content();
    expect(html).not.toContain(CANARY);
  }

  it(
    'a person approves a held POST for 15 minutes in the inbox; the next POST on that path passes without asking',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/`);
      await page.locator('#token').fill(admin.token);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

      const held = agentCall('POST', '/repos/acme/pulls/7/merge', { merge_method: 'squash', password: AGENT_SECRET });
      // The nav badge counts it from any page.
      await expect.poll(() => page.locator('nav a[href="#/approvals"] .count').textContent(), { timeout: 15_000 }).toBe('1');
      await page
        .getByRole('navigation', { name: 'Sections' })
        .getByRole('link', { name: /Approvals/ })
        .click();
      await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor();
      const card = page.locator('.card.approval[data-path="/repos/acme/pulls/7/merge"]');
      await card.waitFor();
      expect(await card.locator('h2').textContent()).toBe(`POST api.example.test:${upstream.port}/repos/acme/pulls/7/merge`);
      expect(await card.locator('.purpose').textContent()).toContain('merge the release PR');
      expect(await card.locator('.preview pre').textContent()).toBe('{"merge_method":"squash","password":"[redacted]"}');
      await noViolationsAndNoCanary();
      await watched.screenshot('dashboard-approval-pending');

      await card.locator('input[name="for"]').fill('15m');
      await card.getByRole('button', { name: 'Approve for' }).click();
      const r = await held;
      expect(r.status, r.text).toBe(200);
      await card.waitFor({ state: 'detached' });
      expect(await page.locator('#approval-recent tr[data-state="approved"]').count()).toBe(1);

      // Within the window, the same method and path: no asking.
      const started = Date.now();
      const again = await agentCall('POST', '/repos/acme/pulls/7/merge', { merge_method: 'squash' });
      expect(again.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(((await admin.call('GET', '/api/approvals')).body as { approvals: unknown[] }).approvals).toHaveLength(0);
    },
    SLOW,
  );

  it(
    'another path still asks; the person denies it with a reason, which reaches the agent',
    async () => {
      const { page } = watched;
      const held = agentCall('POST', '/repos/acme/pulls/8/merge', { merge_method: 'merge' });
      const card = page.locator('.card.approval[data-path="/repos/acme/pulls/8/merge"]');
      await card.waitFor({ timeout: 15_000 });
      await card.locator('input[name="reason"]').fill('not during the release freeze');
      await card.getByRole('button', { name: 'Deny' }).click();
      const r = await held;
      expect(r.status).toBe(403);
      expect(r.code).toBe('approval_denied');
      expect(r.text).toContain('not during the release freeze');
      await card.waitFor({ state: 'detached' });
      await noViolationsAndNoCanary();
    },
    SLOW,
  );

  it(
    'a request nobody answers gets 403 approval_expired, and leaves the inbox',
    async () => {
      const { page } = watched;
      const r = await agentCall('DELETE', '/short/branch');
      expect(r.status).toBe(403);
      expect(r.code).toBe('approval_expired');
      await expect.poll(() => page.locator('.card.approval[data-path="/short/branch"]').count(), { timeout: 10_000 }).toBe(0);
      await expect.poll(() => page.locator('#approval-recent tr[data-state="expired"]').count(), { timeout: 10_000 }).toBe(1);
      await watched.screenshot('dashboard-approval-recent');
      await noViolationsAndNoCanary();
      expect(watched.errors).toEqual([]);
    },
    SLOW,
  );

  it(
    "the dashboard's answers are audited as by: session, and the audit view shows them; the chain verifies",
    async () => {
      const { page } = watched;
      const lines = proxy.auditLines().filter((l) => l['decision'] === 'approval');
      const answered = lines.filter((l) => ['approved_window', 'denied'].includes((l['approval'] as { outcome: string }).outcome));
      expect(answered.map((l) => (l['approval'] as { by: string }).by)).toEqual(['session', 'session']);
      await page.goto(`${admin.base}/#/audit`);
      await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
      await expect.poll(() => page.locator('#audit-rows tr[data-decision="approval"]').count(), { timeout: 20_000 }).toBeGreaterThan(0);
      expect(await page.locator('#audit-rows tr[data-decision="approval"] .approval').first().textContent()).toMatch(/approval ap_[a-z2-9]{12}/);
      const verify = await proxy.cli(['audit', 'verify']);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      await noViolationsAndNoCanary();
    },
    SLOW,
  );
});
