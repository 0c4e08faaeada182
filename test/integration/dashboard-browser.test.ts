// The dashboard in a real browser (Debian's chromium through playwright-core) against a running
// keyway with real traffic from curl: sign in with the keyboard, watch a proxied request arrive in
// the live audit view, revoke the grant in the wallet and see the next request refused, and check
// the page's own defences (HttpOnly cookie, CSRF, an enforced CSP that the page never trips).
// Screenshots go to .test-output/ for a person to look at.
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage } from '../helpers/browser.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 60_000;
const CI_KEY = 'ci-agent-key-5d1e';

describe('dashboard in chromium', () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [
        { id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'weather', type: 'api_key', domains: ['other.example.test'], secret: `${CANARY}-w`, inject: { header: 'x-api-key' } },
      ],
      // ci sends the traffic; builder needs a lease for each grant (the agents page grants it).
      config: {
        agents: {
          ci: { key: 'env:CI_KEY', grants: ['github'], limits: { rate: '600/min', quota: { requests: '1000/day' } } },
          builder: { key: 'env:BUILDER_KEY', grants: ['weather'], lease_ttl: '30m', max_lease_ttl: '2h' },
        },
      },
      env: { CI_KEY, BUILDER_KEY: 'builder-agent-key-9a7c' },
    });
    admin = adminClient(proxy);
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  /** A request through keyway with curl; the HTTP status it got. */
  async function proxied(path = '/echo'): Promise<number> {
    const env = cleanEnv({ HTTPS_PROXY: `http://ci:${CI_KEY}@127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: proxy.bundlePath });
    const res = await curl(['--path-as-is', '-g', '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.test:${upstream.port}${path}`], env);
    expect(res.code, res.stderr).toBe(0);
    return Number(res.stdout);
  }

  it(
    'signs in with the keyboard; the session cookie is HttpOnly and SameSite=Strict',
    async () => {
      const { page, context } = watched;
      await page.goto(`${admin.base}/`);
      await expect.poll(() => page.evaluate<string>('document.activeElement?.id')).toBe('token');
      // The help names this keyway's own token file, not ~/.keyway (issue 48; a loopback listener).
      expect(await page.locator('#token-help').textContent()).toContain(`The token is in ${join(proxy.home, 'data', 'admin.token')}.`);
      await page.keyboard.type(admin.token);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'keyway_session');
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
      expect(session?.value).not.toContain(admin.token);
      // No script on the page can read it, and the token was not kept anywhere a script can reach.
      expect(await page.evaluate<string>('document.cookie')).toBe('');
      expect(await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })')).not.toContain(admin.token);
      await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Grants' }).waitFor();
      // This keyway started moments ago: its counts are since then, and the heading says so (issue 48).
      await page.getByRole('heading', { level: 2, name: /^Since keyway started at \d/ }).waitFor();
      await watched.screenshot('dashboard-overview');

      // Keyboard only: the skip link comes first; Tab reaches the sections, Enter opens one, and
      // focus lands on its heading (a screen reader announces where it is).
      await page.locator('body').focus();
      await page.keyboard.press('Tab');
      expect(await page.evaluate<string>('document.activeElement?.textContent')).toBe('Skip to content');
      let reached = '';
      for (let i = 0; i < 10 && reached !== 'Grants'; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate<string>('document.activeElement?.textContent ?? ""');
      }
      expect(reached).toBe('Grants');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Grants' }).waitFor();
      await expect.poll(() => page.evaluate<string>('document.activeElement?.tagName')).toBe('H1');
    },
    SLOW,
  );

  it(
    'a proxied request appears in the live audit view, and the live region says so',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/audit`);
      await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
      await expect.poll(() => page.locator('#audit-state').textContent(), { timeout: 20_000 }).toContain('Live');
      const rows = page.locator('#audit-rows tr[data-grant="github"][data-decision="inject"]');
      const before = await rows.count();
      expect(await proxied('/echo')).toBe(200);
      await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(before + 1);
      await expect.poll(() => page.locator('#audit-live').textContent(), { timeout: 20_000 }).toContain('new audit line');
      expect(await rows.first().textContent()).toContain('api.example.test');
      expect(await page.content()).not.toContain(CANARY);

      // An agent chooses its paths: one that is markup stays text on the page (percent-encoded by
      // the time it is audited, and shown with textContent whatever it holds).
      await proxied('/echo/<img/src/onerror=window.__xss=1>');
      await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(before + 2);
      expect(await rows.first().locator('.path').textContent()).toContain('img/src/onerror=window.__xss=1');
      expect(await page.locator('#audit-rows img').count()).toBe(0);
      expect(await page.evaluate<unknown>('window.__xss')).toBeUndefined();
      await watched.screenshot('dashboard-audit');
    },
    SLOW,
  );

  it(
    'revoking the grant in the wallet refuses the next proxied request, which the feed filtered by code shows',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/grants`);
      const card = page.locator('article[data-grant="github"]');
      await card.waitFor();
      expect(await card.locator('.badge').textContent()).toBe('active');
      await watched.screenshot('dashboard-grants');
      page.once('dialog', (dialog) => void dialog.accept());
      await card.getByRole('button', { name: 'Revoke github' }).click();
      await expect.poll(() => card.locator('.badge').textContent(), { timeout: 20_000 }).toBe('revoked');

      await page.goto(`${admin.base}/#/audit`);
      await page.getByLabel('Code').fill('grant_needs_reconnect');
      await page.getByRole('button', { name: 'Apply' }).click();
      await expect.poll(() => page.locator('#audit-state').textContent(), { timeout: 20_000 }).toContain('Live');
      const seenBefore = upstream.seen.length;
      expect(await proxied('/echo')).toBeGreaterThanOrEqual(400);
      // Refused by keyway: the upstream never saw it.
      expect(upstream.seen.length).toBe(seenBefore);
      // keyway refuses a revoked grant's request with 401 grant_needs_reconnect (decision error).
      const denied = page.locator('#audit-rows tr[data-grant="github"][data-code="grant_needs_reconnect"]');
      await expect.poll(() => denied.count(), { timeout: 20_000 }).toBeGreaterThan(0);
      expect(await page.locator('#audit-rows tr:not([data-code="grant_needs_reconnect"])').count()).toBe(0);
      await watched.screenshot('dashboard-audit-denied');
    },
    SLOW,
  );

  it(
    'grants and renews a lease on the agents page',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/agents`);
      const section = page.locator('section[data-agent="builder"]');
      await section.waitFor();
      await section.getByRole('button', { name: 'Grant the lease of builder on weather' }).click();
      const renew = section.getByRole('button', { name: 'Renew the lease of builder on weather' });
      await renew.waitFor();
      await section.getByLabel('TTL').fill('90m');
      await renew.click();
      await expect.poll(() => page.locator('#notice').textContent(), { timeout: 20_000 }).toBe('Lease of builder on weather renewed.');
      const lease = await admin.call('GET', '/api/grants');
      type Listing = { grants: Array<{ id: string; leases: Array<{ agent: string; state: string; expires_at: string }> }> };
      const weather = (lease.body as Listing).grants.find((g) => g.id === 'weather');
      expect(weather?.leases).toEqual([expect.objectContaining({ agent: 'builder', state: 'active' })]);
      // Renewed for the 90 minutes typed in (under max_lease_ttl 2h), not the default 30.
      expect(Date.parse(weather?.leases[0]?.expires_at ?? '') - Date.now()).toBeGreaterThan(80 * 60_000);
      await watched.screenshot('dashboard-agents');
      // ci's limits, with the day's quota use that its requests in the tests before took.
      const limits = page.locator('section[data-agent="ci"] p.limits');
      await expect
        .poll(() => limits.textContent(), { timeout: 20_000 })
        .toMatch(/^Limits all its requests: 600\/min \(burst 600, per replica\), \d+\/1000 requests today$/);
      expect(Number(/(\d+)\/1000/.exec((await limits.textContent()) ?? '')?.[1])).toBeGreaterThan(0);
      // The wallet now shows both clocks: the revoked grant, and the leased one with its lease.
      await page.goto(`${admin.base}/#/grants`);
      await page.locator('article[data-grant="weather"]').getByText('builder: active').waitFor();
      await watched.screenshot('dashboard-wallet');
    },
    SLOW,
  );

  it(
    'a write from the page without the CSRF header is refused (403); with it, it is made',
    async () => {
      // Its own page: the browser logs the refused fetch as a console error, which the page never makes itself.
      const other = await openPage(browser, undefined, watched);
      await other.page.goto(`${admin.base}/`);
      await other.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      const statuses = await other.page.evaluate<number[]>(`(async () => {
        const without = await fetch('/api/reload', { method: 'POST' });
        const read = await fetch('/api/grants');
        const csrf = localStorage.getItem('keyway.csrf');
        const withHeader = await fetch('/api/reload', { method: 'POST', headers: { 'x-keyway-csrf': csrf } });
        return [without.status, read.status, withHeader.status];
      })()`);
      expect(statuses).toEqual([403, 403, 200]);
      await other.context.close();
    },
    SLOW,
  );

  it(
    'another web server on 127.0.0.1 is sent the session cookie, but the cookie alone reads nothing',
    async () => {
      // Browsers keep cookies apart by host, not by port: any local server this browser visits gets it.
      const received: string[] = [];
      const other = createServer((req, res) => {
        received.push(req.headers.cookie ?? '');
        res.writeHead(200, { 'content-type': 'text/plain' }).end('another local server');
      });
      other.listen(0, '127.0.0.1');
      await once(other, 'listening');
      const visitor = await openPage(browser, undefined, watched);
      try {
        await visitor.page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
        const cookie = received.find((c) => c.includes('keyway_session=')) ?? '';
        expect(cookie).not.toBe('');
        // What that server can do with it: nothing, without the CSRF token kept in keyway's origin.
        for (const path of ['/api/grants', '/api/agents', '/api/audit', '/api/overview', '/metrics']) {
          expect((await fetch(`${admin.base}${path}`, { headers: { cookie } })).status, path).toBe(403);
        }
        const session = await (await fetch(`${admin.base}/api/session`, { headers: { cookie } })).json();
        expect(session).toEqual({ signed_in: false, token_file: join(proxy.home, 'data', 'admin.token') });
      } finally {
        await visitor.context.close();
        other.close();
      }
    },
    SLOW,
  );

  it(
    'every section loaded with no console error and no CSP violation',
    async () => {
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
      const csp = (await fetch(`${admin.base}/`)).headers.get('content-security-policy');
      expect(csp).toContain("default-src 'self'");
    },
    SLOW,
  );

  it(
    'the CSP is enforced: an injected inline script does not run, and is reported',
    async () => {
      const other = await openPage(browser);
      try {
        await other.page.goto(`${admin.base}/`);
        await other.page.getByLabel('Admin token').waitFor();
        const ran = await other.page.evaluate<boolean>(`(() => {
          const script = document.createElement('script');
          script.textContent = 'window.__injected = true';
          document.body.append(script);
          return window.__injected === true;
        })()`);
        expect(ran).toBe(false);
        await expect.poll(() => other.violations()).toEqual([expect.stringMatching(/^script-src/)]);
      } finally {
        await other.context.close();
      }
    },
    SLOW,
  );

  it(
    'reads at 380 px wide: no section scrolls sideways',
    async () => {
      const narrow = await openPage(browser, { width: 380, height: 800 }, watched);
      try {
        for (const section of ['overview', 'grants', 'agents', 'audit']) {
          await narrow.page.goto(`${admin.base}/#/${section}`);
          await narrow.page.getByRole('heading', { level: 1 }).filter({ hasNotText: 'Sign in' }).waitFor();
          const width = await narrow.page.evaluate<number>('document.documentElement.scrollWidth');
          expect(width, section).toBeLessThanOrEqual(380);
          await narrow.screenshot(`dashboard-narrow-${section}`);
        }
        expect(narrow.errors).toEqual([]);
      } finally {
        await narrow.context.close();
      }
    },
    SLOW,
  );
});
