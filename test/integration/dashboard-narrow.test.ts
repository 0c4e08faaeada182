// The dashboard at 380 px wide in chromium (issue 86, item 8), against a running keyway with what a
// person sees there: a pending approval whose request line is one long unbreakable path, answered
// approvals in the recent table, spend with a model no price covers, audit lines, agents with lease
// forms. On every section: the page does not scroll sideways, and nothing runs off the box it is
// drawn in (a card, a tile, a table's frame) unless that box scrolls to it. The approval's request
// line wraps inside its card, and the recent answers' State and the Spend page's "no price" flag are
// on screen without scrolling sideways (each failed before the fix). At 1200 px the tables stay tables.
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hourOf } from '../../src/spend/core/records.ts';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { plantSpend } from '../helpers/spend-records.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 90_000;
const NARROW = { width: 380, height: 800 };
const SECRET = `${CANARY}-narrow`;
const BOT_KEY = 'bot-key-0b7e';
// One path segment with no place a browser may break a line (no hyphen, no slash, no space).
const UNBROKEN = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4';
const LONG_PATH = `/repos/${UNBROKEN}/pulls/4242/merge`;
const SECTIONS = ['overview', 'grants', 'agents', 'approvals', 'audit', 'spend', 'policy'] as const;

/**
 * Run in the page: each element (in main, the header or the notice) that reaches past the viewport,
 * or past the nearest box drawn around it, or whose content spills past its own edge, when no box
 * between them scrolls sideways to show it.
 * An element of a visually hidden caption or header (1 px, clipped) is not drawn and not counted.
 */
const OVERFLOWING = `(() => {
  const boxes = '.card, .tile, .table-wrap, .filters, .connect, .sign-in, .chart, .once, .warnings, .grant-choice, .notice';
  const scrolls = (el) => { const s = getComputedStyle(el).overflowX; return s === 'auto' || s === 'scroll'; };
  const hidden = (el) => el.closest('.visually-hidden, caption') !== null || (el.closest('thead') !== null && el.closest('thead').getBoundingClientRect().width <= 1);
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const found = [];
  for (const el of document.querySelectorAll('main *, header.top *, #notice')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || hidden(el)) continue;
    let scrolled = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) if (scrolls(up)) scrolled = true;
    if (scrolled) continue;
    const text = (el.textContent ?? '').trim().slice(0, 40);
    if (r.right > innerWidth + 0.5 || r.left < -0.5) found.push(name(el) + ' [' + text + '] spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + innerWidth);
    // Text wider than the block that holds it spills out while the block's own box stays in place
    // (a frame that scrolls sideways holds more than it shows, and is let be: it can be scrolled).
    if (!scrolls(el) && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) found.push(name(el) + ' [' + text + '] holds ' + el.scrollWidth + ' px in ' + el.clientWidth);
    const box = el.parentElement?.closest(boxes);
    if (box) {
      const b = box.getBoundingClientRect();
      if (r.right > b.right + 0.5 || r.left < b.left - 0.5) found.push(name(el) + ' [' + text + '] runs off ' + name(box) + ': ' + Math.round(r.right) + ' > ' + Math.round(b.right));
    }
  }
  return found;
})()`;

/** The browser's getComputedStyle, typed here (this project's TypeScript has no DOM types). */
type Styles = { getComputedStyle(el: unknown, pseudo?: string): { content: string; display: string } };

describe('dashboard at 380 px wide', () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  let narrow: WatchedPage;

  /** The agent's request, answered at once (the rule asks with wait: 0); its answer's approval id. */
  async function agentCall(method: string, path: string): Promise<{ status: number; code: unknown; approval?: string }> {
    const dispatcher = new ProxyAgent({ uri: `http://bot:${BOT_KEY}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, {
        dispatcher,
        method: method as 'POST',
        headers: { 'content-type': 'application/json', 'x-keyway-purpose': 'merge the release candidate once its checks are green' },
        body: method === 'GET' ? undefined : '{"merge_method":"squash"}',
      });
      const text = await res.body.text();
      const approval = text.startsWith('{') ? (JSON.parse(text) as { approval?: { id: string } }).approval?.id : undefined;
      return { status: res.statusCode, code: res.headers['x-keyway-error'], ...(approval ? { approval } : {}) };
    } finally {
      await dispatcher.close();
    }
  }

  async function asked(path: string): Promise<string> {
    const r = await agentCall('POST', path);
    expect(r.code).toBe('approval_required');
    expect(r.approval).toMatch(/^ap_/);
    return r.approval as string;
  }

  async function open(page: Page, section: string): Promise<void> {
    await page.goto(`${admin.base}/#/${section}`);
    await page.getByRole('heading', { level: 1 }).filter({ hasNotText: 'Sign in' }).waitFor();
    if (section === 'approvals') await page.locator('#approval-recent table').waitFor();
    if (section === 'spend') await page.locator('#spend-rows').waitFor();
    if (section === 'audit') await page.locator('#audit-rows tr').first().waitFor();
  }

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [
        { id: 'github', type: 'bearer', domains: ['api.example.test'], secret: SECRET },
        {
          id: 'weather',
          type: 'api_key',
          domains: ['other.example.test', 'a-rather-long-regional-subdomain.forecasts.other.example.test'],
          secret: `${SECRET}-w`,
          inject: { header: 'x-api-key' },
        },
      ],
      env: { BOT_KEY, BUILDER_KEY: 'builder-key-6f2a' },
      config: {
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['github'],
            limits: { rate: '600/min', quota: { requests: '1000/day' } },
            rules: [
              { grant: 'github', methods: ['GET'], paths: ['/**'] },
              { grant: 'github', methods: ['POST'], paths: ['/repos/**'], approve: 'human', approval: { wait: 0 } },
            ],
          },
          builder: { key: 'env:BUILDER_KEY', grants: ['weather'], lease_ttl: '30m', max_lease_ttl: '2h' },
        },
        budgets: [{ agent: 'bot', limit: { usd: 5 }, per: 'day', warn_at: 0.5, over: 'refuse' }],
      },
    });
    admin = adminClient(proxy);

    // Traffic for the overview and the audit: injected requests, and approvals asked.
    for (let i = 0; i < 3; i += 1) expect((await agentCall('GET', '/echo')).status).toBe(200);
    // Answered: one approved for a window (the longest State text), one denied; one left pending.
    const windowed = await asked(`/repos/${UNBROKEN}/pulls/41/merge`);
    expect((await admin.call('POST', `/api/approvals/${windowed}/approve`, { for: '15m' })).status).toBe(200);
    const denied = await asked('/repos/acme/pulls/40/merge');
    expect((await admin.call('POST', `/api/approvals/${denied}/deny`, { reason: 'not during the freeze' })).status).toBe(200);
    await asked(LONG_PATH);

    // Spend, as the ledger writes it: a priced model and one no price covers.
    const hour = hourOf(new Date());
    await plantSpend(proxy.running.services.store, [
      // A large sum, the widest figure a tile holds.
      { hour, agent: 'bot', grant: 'github', model: 'claude-sonnet-4-5', requests: 4, input_tokens: 12_000_000, output_tokens: 345, cost_usd: 12_345.0412 },
      { hour, agent: 'bot', grant: 'github', model: 'house-model-experimental', requests: 2, input_tokens: 700, output_tokens: 70, unpriced: 2 },
    ]);

    browser = await launchChromium();
    watched = await openPage(browser);
    await signInAt(watched.page, admin, 'overview', 'Overview');
    narrow = await openPage(browser, NARROW, watched);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  it(
    'no section scrolls sideways, and nothing runs off the box it is drawn in',
    async () => {
      const { page } = narrow;
      const found: Record<string, string[]> = {};
      for (const section of SECTIONS) {
        await open(page, section);
        const innerWidth = await page.evaluate<number>('innerWidth');
        expect(innerWidth).toBe(NARROW.width);
        const scrollWidth = await page.evaluate<number>('document.documentElement.scrollWidth');
        const off = await page.evaluate<string[]>(OVERFLOWING);
        if (scrollWidth > innerWidth) off.unshift(`the page is ${scrollWidth} px wide`);
        if (off.length > 0) found[section] = off.slice(0, 8);
        await narrow.screenshot(`dashboard-narrow-all-${section}`);
      }
      // And the sign-in page, in a browser with no session (its help names the token file's path).
      const signedOut = await openPage(browser, NARROW);
      try {
        await signedOut.page.goto(`${admin.base}/`);
        await signedOut.page.getByLabel('Admin token').waitFor();
        const off = await signedOut.page.evaluate<string[]>(OVERFLOWING);
        const scrollWidth = await signedOut.page.evaluate<number>('document.documentElement.scrollWidth');
        if (scrollWidth > NARROW.width) off.unshift(`the page is ${scrollWidth} px wide`);
        if (off.length > 0) found['sign-in'] = off.slice(0, 8);
        expect(signedOut.errors).toEqual([]);
      } finally {
        await signedOut.context.close();
      }
      expect(found).toEqual({});
      expect(narrow.errors).toEqual([]);
      expect(await narrow.violations()).toEqual([]);
      expect(await page.content()).not.toContain(CANARY);
    },
    SLOW,
  );

  it(
    "the pending approval's request line wraps inside its card",
    async () => {
      const { page } = narrow;
      await open(page, 'approvals');
      const card = page.locator(`.card.approval[data-path="${LONG_PATH}"]`);
      await card.waitFor();
      const line = card.locator('h2');
      expect(await line.textContent()).toBe(`POST api.example.test:${upstream.port}${LONG_PATH}`);
      const [c, l] = [await card.boundingBox(), await line.boundingBox()];
      expect(l!.x).toBeGreaterThanOrEqual(c!.x);
      expect(l!.x + l!.width).toBeLessThanOrEqual(c!.x + c!.width);
      // All of its text drawn within its own box, on more than one line.
      expect(await line.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
      expect(l!.height).toBeGreaterThan(40);
      await narrow.screenshot('dashboard-narrow-approval');
    },
    SLOW,
  );

  it(
    "the recent answers' State is on screen without scrolling sideways: its whole header, or its name beside each value",
    async () => {
      const { page } = narrow;
      await open(page, 'approvals');
      const recent = page.locator('#approval-recent');
      const wrap = recent.locator('.table-wrap');
      // As a person first sees it: the table's frame not scrolled.
      await wrap.evaluate((el) => {
        el.scrollLeft = 0;
      });
      const frame = (await wrap.boundingBox())!;
      const inside = (box: { x: number; width: number } | null) =>
        box !== null && box.x >= Math.max(0, frame.x) - 0.5 && box.x + box.width <= Math.min(NARROW.width, frame.x + frame.width) + 0.5;
      const header = recent.locator('thead th', { hasText: 'State' });
      const headerBox = await header.boundingBox();
      if (headerBox && headerBox.width > 1) {
        // A table drawn as a table: its State header whole, inside the frame's visible part.
        expect(inside(headerBox), JSON.stringify({ headerBox, frame })).toBe(true);
        expect(await header.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
      } else {
        // Stacked rows: each row's state is named State, and is inside the frame's visible part.
        const rows = recent.locator('tbody tr');
        expect(await rows.count()).toBe(2);
        for (const row of await rows.all()) {
          const cell = row.locator('td[data-label="State"]');
          expect(await cell.evaluate((el) => (globalThis as unknown as Styles).getComputedStyle(el, '::before').content)).toBe('"State"');
          expect(inside(await cell.boundingBox())).toBe(true);
        }
      }
      expect(await recent.locator('tr[data-state="approved"] td:nth-child(3)').textContent()).toMatch(/^approved \(window until /);
      expect(await recent.locator('tr[data-state="denied"] td:nth-child(3)').textContent()).toBe('denied');
      await narrow.screenshot('dashboard-narrow-recent-answers');
    },
    SLOW,
  );

  it(
    'the Spend page\'s "no price" flag is on screen without scrolling sideways',
    async () => {
      const { page } = narrow;
      await open(page, 'spend');
      const row = page.locator('#spend-rows tr[data-model="house-model-experimental"]');
      const flag = row.locator('.badge', { hasText: 'no price' }).first();
      await flag.scrollIntoViewIfNeeded();
      // Scrolled into view vertically only: the table's frame and the page stay at their left edge.
      await page.evaluate('window.scrollTo(0, window.scrollY); for (const w of document.querySelectorAll(".table-wrap")) w.scrollLeft = 0');
      expect(await flag.isVisible()).toBe(true);
      const box = await flag.boundingBox();
      const wrap = await page.locator('#spend-rows').locator('xpath=..').boundingBox();
      expect(box!.x).toBeGreaterThanOrEqual(Math.max(0, wrap!.x));
      expect(box!.x + box!.width).toBeLessThanOrEqual(Math.min(NARROW.width, wrap!.x + wrap!.width));
      // The priced model's row carries no such flag.
      expect(await page.locator('#spend-rows tr[data-model="claude-sonnet-4-5"] .badge').count()).toBe(0);
      await narrow.screenshot('dashboard-narrow-spend-flag');
    },
    SLOW,
  );

  it(
    'at 1200 px the tables stay tables, with their headers on top',
    async () => {
      const { page } = watched;
      for (const [section, table] of [
        ['approvals', '#approval-recent table'],
        ['spend', '#spend-rows'],
        ['audit', 'table.audit'],
      ] as const) {
        await open(page, section);
        const display = await page.locator(table).evaluate((el) => {
          const { getComputedStyle } = globalThis as unknown as Styles;
          return [getComputedStyle(el).display, getComputedStyle(el.querySelector('thead')).display];
        });
        expect(display, section).toEqual(['table', 'table-header-group']);
        expect((await page.locator(`${table} thead th`).first().boundingBox())!.width, section).toBeGreaterThan(20);
      }
      expect(watched.errors).toEqual([]);
    },
    SLOW,
  );
});
