// Details a new user saw in the dashboard's screenshots (issue 36, item 9), checked in chromium
// against a running keyway: a checkbox on one line with its label; the deny reason's placeholder
// shown whole; a notice kept to the page it was raised on and off the content; a self check not
// shown as a refusal; a command-line change naming a person at a host; counts in the singular;
// no "unknown" account on a static grant; a new agent with no grant ticked; an approval's
// remaining time as it is, not rounded up.
import { readFileSync } from 'node:fs';
import type { Browser, Locator, Page } from 'playwright-core';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEvent, AuditWriter } from '../../src/audit/index.ts';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 60_000;
const SECRET = `${CANARY}-details`;
/** The held approval's card in the inbox. */
const CARD = '.card.approval[data-path="/repos/acme/pulls/1/merge"]';

type Box = { x: number; y: number; width: number; height: number };

async function boxOf(locator: Locator): Promise<Box> {
  // The page re-renders a list when its data comes (the inbox after an answer): the element may be
  // between two renders at the moment asked, so its box is awaited, not read once.
  let box: Box | null = null;
  await expect
    .poll(
      async () => {
        box = await locator.boundingBox();
        return box !== null;
      },
      { message: `${locator.toString()} is not shown`, timeout: 10_000 },
    )
    .toBe(true);
  return box!;
}

const centreY = (b: Box) => b.y + b.height / 2;
const overlaps = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/** The checkbox and the text of its label on one line: their vertical centres within a few px. */
async function expectOnOneLine(page: Page, checkboxId: string): Promise<void> {
  const box = await boxOf(page.locator(`#${checkboxId}`));
  // The label's text itself (a label may wrap its checkbox): the range of its last text node.
  const text = await page.evaluate<Box>(`(() => {
    const label = document.querySelector('label[for="${checkboxId}"]');
    const nodes = [...label.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim());
    const range = document.createRange();
    range.selectNodeContents(nodes[nodes.length - 1]);
    const r = range.getClientRects()[0];
    return { x: r.x, y: r.y, width: r.width, height: r.height };
  })()`);
  expect(Math.abs(centreY(box) - centreY(text)), `${checkboxId} beside its label`).toBeLessThan(4);
  expect(text.x).toBeGreaterThan(box.x + box.width - 1);
}

/** "in 1 min 36 s", "in 2 min", "in 40 s" as seconds; "in moments" as 0. */
function secondsIn(text: string): number {
  const min = /(\d+) min/.exec(text);
  const s = /(\d+) s\b/.exec(text);
  return Number(min?.[1] ?? 0) * 60 + Number(s?.[1] ?? 0);
}

describe('dashboard details (issue 36, item 9)', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;

  beforeAll(async () => {
    upstream = await startUpstream({
      requireAuthorization: `Bearer ${SECRET}`,
      handler: (req, res) => {
        if (!req.url?.startsWith('/repos/')) return false;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return true;
      },
    });
    proxy = await startProxy({
      grants: [{ id: 'static', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key-9d2e' },
      config: {
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['static'],
            rules: [{ grant: 'static', methods: ['POST'], paths: ['/repos/**'], approve: 'human', approval: { wait: '2m' } }],
          },
        },
      },
    });
    admin = adminClient(proxy);
    browser = await launchChromium();
    watched = await openPage(browser);
    await signIn(watched.page);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${admin.base}/`);
    await page.locator('#token').fill(admin.token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  }

  /** The agent's POST, held for a person; its own connection, so that it queues nothing else. */
  async function agentPost(path: string): Promise<number> {
    const dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-9d2e@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher, method: 'POST', body: '{}' });
      await res.body.text();
      return res.statusCode;
    } finally {
      await dispatcher.close();
    }
  }

  const notice = () => watched.page.locator('#notice');
  /** The agent's POST held for a person, from the first approvals test on. */
  let held: Promise<number> | undefined;

  it(
    'a notice stays on the page it was raised on: gone after moving to another section',
    async () => {
      const fresh = await openPage(browser);
      try {
        const { page } = fresh;
        await signIn(page);
        expect(await page.locator('#notice').textContent()).toBe('Signed in.');
        await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Grants' }).click();
        await page.getByRole('heading', { level: 1, name: 'Grants' }).waitFor();
        expect(await page.locator('#notice').textContent()).toBe('');
      } finally {
        await fresh.context.close();
      }
    },
    SLOW,
  );

  it(
    'counts are in the singular for one: "1 agent" on the overview',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/overview`);
      const overview = page.locator('#overview');
      await overview.waitFor();
      const text = (await overview.textContent()) ?? '';
      expect(text).toContain('1 agent ·');
      expect(text).not.toMatch(/\b1 (agents|minutes|lines|tools)\b/);
    },
    SLOW,
  );

  it(
    'a static bearer grant shows no "unknown" account',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/grants`);
      const card = page.locator('article[data-grant="static"]');
      await card.waitFor();
      expect(await card.locator('dl').textContent()).not.toContain('unknown');
    },
    SLOW,
  );

  it(
    '"Add an agent" starts with no grant ticked, each checkbox on one line with its label',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/agents`);
      const form = page.locator('form[aria-labelledby="add-agent-title"]');
      await form.waitFor();
      expect(await form.getByLabel('Every grant, present and future').isChecked()).toBe(false);
      expect(await form.getByLabel('static', { exact: true }).isChecked()).toBe(false);
      expect(await form.getByLabel('static', { exact: true }).isEnabled()).toBe(true);
      await expectOnOneLine(page, 'new-agent-every');
      await expectOnOneLine(page, 'new-agent-grant-static');
      await watched.screenshot('dashboard-details-add-agent');
    },
    SLOW,
  );

  it(
    'the audit page: a self check is not a refusal; a command-line change names a person at a host',
    async () => {
      const { paths, auditHeadKey } = proxy.running.services;
      const writer = await AuditWriter.open({ path: paths.audit, headPath: paths.auditHead, headKey: auditHeadKey });
      const base = { ts: new Date().toISOString(), refreshed: false, duration_ms: 1 };
      // As `keyway doctor`'s check and `keyway grants add` write them.
      await writer.write({
        ...base,
        id: 'self-check-1',
        agent: 'bot',
        grant: null,
        decision: 'self_check',
        code: 'self_check',
        method: 'GET',
        host: 'keyway.internal',
        port: 443,
        path: '/healthz',
        status: 200,
        client: '127.0.0.1',
      } as AuditEvent);
      await writer.write({
        ...base,
        id: 'cli-change-1',
        agent: null,
        grant: 'vm',
        decision: 'admin',
        code: null,
        method: null,
        host: 'vm',
        port: 0,
        path: null,
        status: null,
        client: 'cli',
        action: 'grants.create',
        actor: 'root@vm',
      } as AuditEvent);
      await writer.close();

      const { page } = watched;
      await page.goto(`${admin.base}/#/audit`);
      const check = page.locator('#audit-rows tr[data-id="self-check-1"]');
      await check.waitFor();
      expect((await check.locator('.badge').getAttribute('class'))?.split(' ')).not.toContain('bad');
      const change = page.locator('#audit-rows tr[data-id="cli-change-1"] td.request');
      expect((await change.textContent())?.replace(/\s+/g, ' ').trim()).toBe('grants.create by root on host vm');
      await watched.screenshot('dashboard-details-audit');
    },
    SLOW,
  );

  it(
    'a held approval: its checkbox on one line with its label, the deny reason’s whole placeholder shown',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/approvals`);
      await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor();
      held = agentPost('/repos/acme/pulls/1/merge');
      const card = page.locator(CARD);
      await card.waitFor({ timeout: 15_000 });

      await expectOnOneLine(page, `${(await card.locator('h2').getAttribute('id')) ?? ''}-pattern`);
      // The placeholder's width in the input's font, against the room inside its padding.
      const fits = await page.evaluate<{ text: number; room: number }>(`(() => {
        const input = document.querySelector('${CARD} input[name="reason"]');
        const style = getComputedStyle(input);
        const context = document.createElement('canvas').getContext('2d');
        context.font = style.font;
        const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return { text: context.measureText(input.placeholder).width, room };
      })()`);
      expect(fits.text).toBeLessThanOrEqual(fits.room);
      await watched.screenshot('dashboard-details-approval');
    },
    SLOW,
  );

  it(
    'a held approval says the time it has left as it is (24 s into wait: 2m, not "in 2 min"), counting down',
    async () => {
      // The same approval 24 s later, in a second window whose clock is ahead: 1 min 36 s are left, not 2 min.
      const later = await openPage(browser, undefined, watched);
      try {
        await later.page.clock.install({ time: Date.now() + 24_000 });
        await later.page.goto(`${admin.base}/#/approvals`);
        await later.page.locator(`${CARD} header time`).waitFor();
        const read = () =>
          later.page.evaluate<{ shown: string; left: number }>(`(() => {
            const time = document.querySelector('${CARD} header time');
            return { shown: time.textContent, left: (Date.parse(time.getAttribute('datetime')) - Date.now()) / 1000 };
          })()`);
        const first = await read();
        expect(secondsIn(first.shown), first.shown).toBeLessThanOrEqual(first.left + 1);
        expect(secondsIn(first.shown), first.shown).toBeGreaterThanOrEqual(first.left - 2);
        // It keeps counting down while the page is open.
        await later.page.clock.runFor(5_000);
        const second = await read();
        expect(secondsIn(second.shown), second.shown).toBeLessThan(secondsIn(first.shown));
        expect(secondsIn(second.shown), second.shown).toBeLessThanOrEqual(second.left + 1);
      } finally {
        await later.context.close();
      }
    },
    SLOW,
  );

  it(
    'the notice of an answer does not cover the table, and is gone on leaving the page',
    async () => {
      const { page } = watched;
      const card = page.locator(CARD);
      await card.getByRole('button', { name: 'Approve once' }).click();
      // Raised once the inbox has reloaded, the answered request in its table; it fades in seconds.
      await expect.poll(() => notice().textContent()).toMatch(/^Approved .* once\.$/);
      // A window that ends inside the table: the notice must still not cover it.
      const table = await boxOf(page.locator('#approval-recent table'));
      await page.setViewportSize({ width: 1200, height: Math.round(table.y + table.height) });
      expect(overlaps(await boxOf(notice()), await boxOf(page.locator('#approval-recent table')))).toBe(false);
      await watched.screenshot('dashboard-details-approved');
      expect(await held).toBe(200);

      await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Audit' }).click();
      await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
      expect(await notice().textContent()).toBe('');
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
    },
    SLOW,
  );
});
