// The grants page in a real browser (Debian's chromium) on grants from keyway.yaml (issue 60): the
// store cannot delete them, so no Delete button is offered on their cards (they say where to remove
// them); a stored grant keeps its button. A capture grant of the config offers what the API does
// for it: forgetting the captured logins. The API itself refuses to delete a config grant, in words.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

const SLOW = 60_000;

describe('the grants page on grants from the config', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;

  beforeAll(async () => {
    proxy = await startProxy({
      grants: [{ id: 'stored', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
      config: {
        grants: {
          configured: { type: 'bearer', domains: ['other.example.test'], secret: 'env:CONFIGURED_SECRET' },
          'corp-login': { type: 'login_capture', domains: ['plain.example.test'], capture: { endpoints: [{ host: 'bad.example.test', path: '/token' }] } },
        },
      },
      env: { CONFIGURED_SECRET: `${CANARY}-configured` },
    });
    admin = adminClient(proxy);
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
  });

  it(
    'offers Delete on a stored grant only; a config grant says where it is removed',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'grants', 'Grants');
      const cardOf = (id: string) => page.locator(`article[data-grant="${id}"]`);
      await cardOf('configured').waitFor();
      expect(await cardOf('stored').getByRole('button', { name: 'Delete stored' }).count()).toBe(1);
      expect(
        await cardOf('configured')
          .getByRole('button', { name: /Delete/ })
          .count(),
      ).toBe(0);
      expect(await cardOf('configured').textContent()).toContain('It is defined in the config (grants.configured): remove it there to delete it.');
      // The capture grant of the config: no Delete, but its captured logins can be forgotten.
      expect(
        await cardOf('corp-login')
          .getByRole('button', { name: /^Delete/ })
          .count(),
      ).toBe(0);
      page.once('dialog', (dialog) => void dialog.accept());
      await cardOf('corp-login').getByRole('button', { name: 'Forget the logins captured for corp-login' }).click();
      await expect.poll(() => page.locator('#notice').textContent()).toContain('Forgot the logins captured for corp-login');
      await cardOf('corp-login').waitFor();
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
      await watched.screenshot('dashboard-config-grants');
    },
    SLOW,
  );

  it('the API refuses to delete a config grant with the reason, and keeps it', async () => {
    const refused = await admin.call('DELETE', '/api/grants/configured');
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error: { code: 'conflict', message: expect.stringContaining('grant "configured" is defined in the config') } });
    expect((await admin.call('GET', '/api/grants/configured')).status).toBe(200);
  });
});
