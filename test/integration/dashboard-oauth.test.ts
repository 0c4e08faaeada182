// Connecting an OAuth account from the dashboard, in chromium, against a real authorization server
// (oidc-provider): the wallet's Connect form asks keyway for the consent URL, the browser goes
// through the provider's login and consent, comes back to the admin listener's own callback, and the
// new grant is in the wallet and injects a token that the provider says is live.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { launchChromium, openPage, type WatchedPage, signInAt } from '../helpers/browser.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 90_000;

describe('dashboard: connect an OAuth account', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  let client: ProxyAgent;

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({ authorize: async (header) => auth.introspect(header?.replace(/^Bearer /, '') ?? '') });
    proxy = await startProxy({
      config: {
        providers: {
          testauth: {
            authorize_url: auth.authUrl,
            token_url: auth.tokenUrl,
            revoke_url: auth.revokeUrl,
            scopes: ['openid', 'offline_access', 'api'],
            domains: ['api.example.test'],
            client_id: CLIENT_ID,
            client_secret: 'env:TEST_CLIENT_SECRET',
          },
        },
      },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET },
    });
    admin = adminClient(proxy);
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
    await auth?.close();
  });

  it(
    'goes from the Connect form through consent to a live grant in the wallet',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'grants', 'Grants');
      await page.getByLabel('Provider').fill('testauth');
      await page.getByLabel('Grant id').fill('conn');
      await page.getByLabel('Scopes').fill('openid offline_access api');
      await page.getByRole('button', { name: 'Connect' }).click();
      // The provider logs the test account in and records consent, then redirects to keyway.
      await page.waitForURL((url) => url.origin === admin.base && url.pathname === '/oauth/callback', { timeout: 30_000 });
      await page.waitForLoadState('load');
      const callbackText = (await page.textContent('body')) ?? '';
      expect(callbackText).toContain('conn');
      await watched.screenshot('dashboard-oauth-callback');
      await page.goto(`${admin.base}/#/grants`);
      const card = page.locator('article[data-grant="conn"]');
      await card.waitFor({ timeout: 20_000 });
      expect(await card.locator('.badge').textContent()).toBe('active');
      // The scopes the provider granted (it keeps offline_access out of the token's scope).
      expect(await card.textContent()).toContain('openid api');
      // Whose account it is, from the id_token.
      expect(await card.textContent()).toContain(ACCOUNT_ID);
      await watched.screenshot('dashboard-oauth-grants');

      // Refresh from the wallet: one refresh_token call at the provider.
      const refreshesBefore = auth.tokenCalls['refresh_token'] ?? 0;
      await card.getByRole('button', { name: 'Refresh conn now' }).click();
      await expect.poll(() => page.locator('#notice').textContent(), { timeout: 20_000 }).toBe('Refreshed conn.');
      expect(auth.tokenCalls['refresh_token']).toBe(refreshesBefore + 1);

      // The stored grant injects a token the provider says is live.
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: client, headers: { 'x-keyway-grant': 'conn' } });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      // Not one console error or CSP violation on the way, the provider's pages and the callback included.
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
    },
    SLOW,
  );
});
