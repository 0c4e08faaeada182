// The overview and the Grants page agree: the overview counts grants by the status each card shows
// (`no secret`, `expiring`, …), not the stored one. A grant whose token never expires stays
// `active` when one agent's lease on it ends soon; the card and the overview name that lease
// instead. Times read as local dates and times, never raw ISO 8601.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage, signInAt } from '../helpers/browser.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

const SLOW = 60_000;
const ISO = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

describe('dashboard: grant status, the same on the overview and the Grants page', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  const tokenEnds = Date.now() + 2 * 3_600_000;
  let leaseEnds = '';

  beforeAll(async () => {
    proxy = await startProxy({
      grants: [
        { id: 'steady', type: 'bearer', domains: ['api.example.test'], secret: 'steady-token-0c4e' },
        { id: 'empty', type: 'bearer', domains: ['other.example.test'] },
        // An access token alone cannot be renewed: it is `expiring` within a day of its end.
        { id: 'short', type: 'oauth2', domains: ['plain.example.test'], secret: { accessToken: 'short-token-9d2a', expiresAt: tokenEnds } },
        { id: 'old', type: 'bearer', domains: ['slow.example.test'], secret: 'old-token-77b1', status: 'revoked' },
      ],
      config: { agents: { bot: { key: 'env:BOT_KEY', grants: ['steady'], lease_ttl: '5m' } } },
      env: { BOT_KEY: 'bot-agent-key-41f0' },
    });
    admin = adminClient(proxy);
    const lease = await admin.call('PUT', '/api/agents/bot/leases/steady');
    expect(lease.status).toBe(200);
    leaseEnds = (lease.body as { lease: { expires_at: string } }).lease.expires_at;
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
  });

  /** How the page's browser writes this time: what a person reads. */
  const local = (at: number | string) => watched.page.evaluate<string>(`new Date(${JSON.stringify(at)}).toLocaleString()`);

  it(
    'each card: a lease ending soon leaves a never-expiring grant active and is named; times are local',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'grants', 'Grants');
      const badge = (id: string) => page.locator(`article[data-grant="${id}"] .badge`).textContent();
      await page.locator('article[data-grant="steady"]').waitFor();
      expect(await badge('steady')).toBe('active');
      expect(await badge('empty')).toBe('no secret');
      expect(await badge('short')).toBe('expiring');
      expect(await badge('old')).toBe('revoked');

      const steadyDetail = await page.locator('article[data-grant="steady"] .detail').textContent();
      expect(steadyDetail).toBe(`agent bot's lease on it ends at ${await local(leaseEnds)}`);
      const shortDetail = await page.locator('article[data-grant="short"] .detail').textContent();
      expect(shortDetail).toBe(`the token expires at ${await local(tokenEnds)} and cannot be refreshed`);
      expect(await page.evaluate<string>('document.body.innerText')).not.toMatch(ISO);
      await watched.screenshot('dashboard-status-grants');
    },
    SLOW,
  );

  it(
    'the overview counts the statuses the cards show, and lists the lease that ends soon',
    async () => {
      const { page } = watched;
      const onCards = await page.locator('article.grant .badge').allTextContents();
      const tally: Record<string, number> = {};
      for (const status of onCards) tally[status] = (tally[status] ?? 0) + 1;
      expect(tally).toEqual({ active: 1, 'no secret': 1, expiring: 1, revoked: 1 });

      await page.goto(`${admin.base}/#/overview`);
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      const counts = page.locator('#grant-counts li');
      await counts.first().waitFor();
      const shown: Record<string, number> = {};
      for (const li of await counts.all()) shown[(await li.getAttribute('data-status')) ?? ''] = Number((await li.textContent())?.split(' ').at(-1));
      expect(shown).toEqual(tally);
      expect(await counts.allTextContents()).toEqual(['active 1', 'expiring 1', 'no secret 1', 'revoked 1']);

      const ending = page.locator('li[data-agent="bot"][data-grant="steady"]');
      // Rounded down, to the second under 10 minutes: never more time than is left.
      expect(await ending.textContent()).toMatch(/^bot on steady: ends in (4 min( [1-5]?\d s)?|5 min)$/);
      expect(await ending.locator('time').getAttribute('title')).toBe(await local(leaseEnds));
      expect(await page.evaluate<string>('document.body.innerText')).not.toMatch(ISO);

      const overview = await admin.call('GET', '/api/overview');
      expect(overview.body).toMatchObject({ grants: tally, leases_ending: [{ agent: 'bot', grant: 'steady', expires_at: leaseEnds }] });
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
      await watched.screenshot('dashboard-status-overview');
    },
    SLOW,
  );
});
