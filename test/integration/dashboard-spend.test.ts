// The dashboard's Spend page in chromium against a running keyway, over spend records planted in
// its store as the spend ledger writes them: today's and this month's tokens and dollars as GET
// /api/spend has them, per agent and model, an unpriced model flagged, the budgets with how close
// each is; no console error, no CSP violation, no grant secret on the page; readable at 380 px.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { budgetsOf } from '../../src/operations/spend-budgets.ts';
import type { SpendReport } from '../../src/operations/spend.ts';
import { budgetKey, periodOf, scopeValueOf } from '../../src/spend/core/budgets.ts';
import { hourOf } from '../../src/spend/core/records.ts';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { type PlantedSpend, plantBudget, plantSpend } from '../helpers/spend-records.ts';

const SLOW = 60_000;
const SECRET = `${CANARY}-spend-page`;
const usd = (n: number) => `$${n.toFixed(6)}`;
const tokens = (n: number) => new Intl.NumberFormat('en-US').format(n);

describe('dashboard: Spend page', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  const now = new Date();
  const dayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const today = hourOf(now);
  // An hour of this month before today, when the month has one (not on the 1st).
  const earlier = dayStart > monthStart ? hourOf(new Date(dayStart - 3_600_000)) : undefined;
  const planted: PlantedSpend[] = [
    {
      hour: today,
      agent: 'ci-bot',
      grant: 'anthropic',
      model: 'claude-sonnet-4-5',
      requests: 5,
      input_tokens: 12_000,
      output_tokens: 345,
      cached_input_tokens: 8_000,
      cost_usd: 0.0412347,
    },
    { hour: today, agent: 'ci-bot', grant: 'gateway', model: 'house-model', requests: 2, input_tokens: 700, output_tokens: 70, unpriced: 2 },
    { hour: today, agent: 'ci-bot', grant: 'gateway', model: null, requests: 1, unknown: 1 },
    // Under a budget in dollars: priced at the fallback; under a budget, no usage: estimated from bytes.
    {
      hour: today,
      agent: 'ci-bot',
      grant: 'openai',
      model: 'gpt-made-up',
      requests: 3,
      input_tokens: 30,
      output_tokens: 3,
      cost_usd: 0.00063,
      unpriced: 3,
      fallback: 3,
    },
    {
      hour: today,
      agent: 'ci-bot',
      grant: 'openai',
      model: 'gpt-4o',
      requests: 2,
      input_tokens: 20,
      output_tokens: 2000,
      cost_usd: 0.02005,
      unknown: 2,
      estimated: 2,
    },
    ...(earlier
      ? [{ hour: earlier, agent: 'ci-bot', grant: 'anthropic', model: 'claude-sonnet-4-5', requests: 3, input_tokens: 3_000, output_tokens: 30, cost_usd: 0.3 }]
      : []),
    ...(earlier
      ? [
          {
            hour: earlier,
            agent: 'other',
            grant: 'openai',
            end_user: 'alice@example.com',
            model: 'gpt-4.1',
            requests: 1,
            input_tokens: 40,
            output_tokens: 4,
            cost_usd: 0.000123,
          },
        ]
      : []),
  ];

  beforeAll(async () => {
    proxy = await startProxy({
      grants: [{ id: 'anthropic', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      config: {
        budgets: [
          { agent: 'ci-bot', limit: { usd: 0.05 }, per: 'day', warn_at: 0.5, over: 'refuse' },
          { end_user: '*', limit: { tokens: 1000 }, per: 'month', over: 'approve' },
        ],
      },
    });
    admin = adminClient(proxy);
    const store = proxy.running.services.store;
    await plantSpend(store, planted);
    {
      const [ci, users] = budgetsOf(proxy.running.services.config) as [never, never];
      await plantBudget(store, budgetKey(ci, scopeValueOf(ci, { agent: 'ci-bot', grant: 'anthropic', end_user: null })!), periodOf('day', now), {
        usd: 0.0412347,
      });
      await plantBudget(
        store,
        budgetKey(users, scopeValueOf(users, { agent: 'other', grant: 'openai', end_user: 'alice@example.com' })!),
        periodOf('month', now),
        { tokens: 44 },
      );
    }
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
  });

  it(
    'shows today’s and this month’s tokens and cost per agent and model, as GET /api/spend has them',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'spend', 'Spend');
      await page.locator('#spend-rows').waitFor();
      const month = (await admin.call('GET', '/api/spend')).body as SpendReport;
      const day = (await admin.call('GET', `/api/spend?since=${new Date(dayStart).toISOString()}`)).body as SpendReport;
      expect(month.totals.requests).toBe(planted.reduce((n, p) => n + (p.requests ?? 0), 0));

      expect(await page.locator('#today-cost .value').textContent()).toBe(usd(day.totals.cost_usd));
      expect(await page.locator('#month-cost .value').textContent()).toBe(usd(month.totals.cost_usd));
      expect(await page.locator('#today-tokens .value').textContent()).toBe(tokens(day.totals.input_tokens + day.totals.output_tokens));
      expect(await page.locator('#month-requests .value').textContent()).toBe(tokens(month.totals.requests));
      expect(await page.locator('#month-unpriced .value').textContent()).toBe('5');
      expect(await page.locator('#month-unknown .value').textContent()).toBe('3');
      expect(await page.locator('#month-fallback .value').textContent()).toBe('3');
      expect(await page.locator('#today-estimated .value').textContent()).toBe('2');
      expect(Math.abs(month.totals.cost_usd - planted.reduce((n, p) => n + (p.cost_usd ?? 0), 0))).toBeLessThan(1e-6);

      const cells = (agent: string, model: string) => page.locator(`#spend-rows tr[data-agent="${agent}"][data-model="${model}"] td`).allTextContents();
      const sonnet = planted.filter((p) => p.model === 'claude-sonnet-4-5');
      expect(await cells('ci-bot', 'claude-sonnet-4-5')).toEqual([
        'ci-bot',
        'claude-sonnet-4-5',
        tokens(12_345),
        usd(0.0412347),
        tokens(sonnet.reduce((n, p) => n + (p.requests ?? 0), 0)),
        tokens(sonnet.reduce((n, p) => n + (p.input_tokens ?? 0), 0)),
        tokens(8_000),
        tokens(sonnet.reduce((n, p) => n + (p.output_tokens ?? 0), 0)),
        usd(sonnet.reduce((n, p) => n + (p.cost_usd ?? 0), 0)),
        '',
      ]);
      const house = await cells('ci-bot', 'house-model');
      expect(house.slice(2, 9)).toEqual([tokens(770), usd(0), '2', '700', '0', '70', usd(0)]);
      expect(house[9]).toBe('no price 2 answers: add it under pricing:');
      expect((await cells('ci-bot', ''))[9]).toBe('no usage 1 answer said nothing of their usage');
      expect((await cells('ci-bot', 'gpt-made-up'))[9]).toBe(
        "no price 3 answers: add it under pricing:fallback price 3 answers priced at the vendor's highest",
      );
      expect((await cells('ci-bot', 'gpt-4o'))[9]).toBe('no usage 2 answers said nothing of their usageestimated 2 answers counted from their bytes');
      if (earlier) expect((await cells('other', 'gpt-4.1')).slice(2, 4)).toEqual(['0', usd(0)]); // nothing today

      const text = (await page.locator('main').textContent()) ?? '';
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(CANARY);
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
      await watched.screenshot('dashboard-spend');
    },
    SLOW,
  );

  it(
    'shows each budget with how close it is: a meter, the share in words, when it resets',
    async () => {
      const { page } = watched;
      const ci = page.locator('#budget-list li[data-budget="budgets[0]"]');
      await ci.waitFor();
      expect(await ci.locator('.budget-used').textContent()).toBe(`${usd(0.0412347)} of ${usd(0.05)} per day (82%)`);
      expect(await ci.locator('header .badge').textContent()).toBe('past its warning');
      // What its count holds that no vendor priced: flagged.
      expect(await ci.locator('.budget-flags').textContent()).toBe(
        'fallback price 3 answers priced at the fallback estimated 2 answers with no usage, counted from bytes',
      );
      expect(await page.locator('#budget-list li[data-budget="budgets[1]"] .budget-flags').count()).toBe(0);
      expect(Number(await ci.locator('meter').getAttribute('value'))).toBeCloseTo(0.0412347, 9);
      const alice = page.locator('#budget-list li[data-budget="budgets[1]"][data-scope="end_user=alice%40example.com"]');
      expect(await alice.locator('h3').textContent()).toBe('budgets[1]: end user alice@example.com');
      expect(await alice.locator('.budget-used').textContent()).toBe('44 tokens of 1,000 tokens per month (4%)');
    },
    SLOW,
  );

  it(
    'reads at 380 px wide: the page does not scroll sideways (the table stacks its rows; dashboard-narrow.test.ts)',
    async () => {
      const narrow = await openPage(browser, { width: 380, height: 800 }, watched);
      try {
        await narrow.page.goto(`${admin.base}/#/spend`);
        await narrow.page.locator('#spend-rows').waitFor();
        expect(await narrow.page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(380);
        await narrow.screenshot('dashboard-narrow-spend');
        expect(narrow.errors).toEqual([]);
      } finally {
        await narrow.context.close();
      }
    },
    SLOW,
  );
});
