// The dashboard's secret field takes the documented JSON forms as a person pastes them (issue 36,
// item 12): an mtls secret with its PEMs pasted raw between the quotes, and a GitHub App's key. The
// field is a password input, so the browser turns the line breaks pasted into spaces; keyway must
// still read the PEMs. Pasted through the real clipboard, in chromium; the stored material is then
// checked, and the page must hold none of it.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage, signInAt } from '../helpers/browser.ts';
import { issueClientCert, makeTestCa } from '../helpers/client-ca.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

const SLOW = 90_000;

describe('dashboard: a secret pasted in its documented JSON form', () => {
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  const client = issueClientCert(makeTestCa('dashboard-forms-ca'), 'dashboard-forms-client');
  const appKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const pasted: Record<string, string> = {
    mt: `{\n  "certificate": "${client.certPem.trim()}",\n  "privateKey": "${client.keyPem.trim()}"\n}\n`,
    app: `{"appId": 123456, "privateKey": "${appKey.trim()}", "installationId": 42}`,
  };

  beforeAll(async () => {
    proxy = await startProxy({
      grants: [
        { id: 'mt', type: 'mtls', domains: ['mtls.example.test'] },
        { id: 'app', type: 'github_app', domains: ['api.github.com'] },
        // A type the dashboard's hand-kept help once lacked: its help now comes from the type.
        { id: 'sig', type: 'http_signature', domains: ['sig.example.test'] },
      ],
    });
    admin = adminClient(proxy);
    browser = await launchChromium();
    watched = await openPage(browser);
    await watched.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: admin.base });
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
  });

  /** The key body of a PEM, line breaks aside: what must survive the paste. */
  const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');

  it(
    'an mtls secret with raw PEMs and a github_app key, pasted into the password field, are set and read',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'grants', 'Grants');

      for (const id of ['mt', 'app']) {
        const card = page.locator(`article[data-grant="${id}"]`);
        await card.locator('summary', { hasText: 'Set secret' }).click();
        const field = card.getByLabel(`New secret for ${id}`);
        expect(await field.getAttribute('type')).toBe('password');
        // The help says the form, and that the PEM goes in as it is.
        expect(await card.locator(`#secret-${id}-help`).textContent()).toMatch(/^JSON: .*paste the (PEMs|\.pem GitHub gives) as (they are|it is)/);
        // Through the clipboard, as a person pastes: the text given to the page as a string argument.
        await page.evaluate(
          (text) => (globalThis as unknown as { navigator: { clipboard: { writeText(t: string): Promise<void> } } }).navigator.clipboard.writeText(text),
          pasted[id]!,
        );
        await field.focus();
        await page.keyboard.press('ControlOrMeta+V');
        // A password field is one line: chromium turns each pasted line break into a space.
        expect(await field.inputValue()).not.toMatch(/[\r\n]/);
        expect((await field.inputValue()).length).toBeGreaterThan(100);
        await card.getByRole('button', { name: `Set secret of ${id}` }).click();
        await expect.poll(() => page.locator('#notice').textContent()).toBe(`Secret of ${id} set; it is not shown again.`);
        expect(await card.locator('[role=alert]').textContent()).toBe('');
        await page.evaluate('navigator.clipboard.writeText("")');
      }
      await watched.screenshot('dashboard-secret-forms');

      const store = proxy.running.services.store;
      const mt = store.get<StoredGrant>(grantRecordId('mt'))?.secret as { certificate: string; privateKey: string };
      expect(new X509Certificate(mt.certificate).fingerprint256).toBe(new X509Certificate(client.certPem).fingerprint256);
      expect(body(mt.privateKey)).toBe(body(client.keyPem));
      expect(() => createPrivateKey(mt.privateKey)).not.toThrow();
      const app = store.get<StoredGrant>(grantRecordId('app'))?.secret as { appId: string; privateKey: string; installationId: string };
      expect(app).toMatchObject({ appId: '123456', installationId: '42' });
      expect(body(app.privateKey)).toBe(body(appKey));
      expect(() => createPrivateKey(app.privateKey)).not.toThrow();

      const listed = (await admin.call('GET', '/api/grants')).body as { grants: Array<{ id: string; secret: string }> };
      expect(listed.grants.filter((g) => g.secret === 'set').map((g) => g.id)).toEqual(expect.arrayContaining(['mt', 'app']));
      // Sent once, then gone from the page: no field keeps it, no text shows it.
      const values = await page.evaluate<string>('JSON.stringify([...document.querySelectorAll("input")].map((i) => i.value))');
      const text = await page.content();
      for (const pem of [client.keyPem, appKey]) {
        const piece = body(pem).slice(40, 80);
        expect(values).not.toContain(piece);
        expect(text).not.toContain(piece);
      }
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
    },
    SLOW,
  );

  it(
    'a type the hand-kept help lacked (http_signature) shows its help, as GET /api/grant-types derives it from the type',
    async () => {
      const answer = await admin.call('GET', '/api/grant-types');
      expect(answer.status).toBe(200);
      const types = (answer.body as { types: Array<{ type: string; secret: { shape: string; line: boolean; json: string[]; help: string } }> }).types;
      const sig = types.find((t) => t.type === 'http_signature');
      expect(sig?.secret).toMatchObject({ line: true, json: [], help: 'An http_signature secret is a PEM private key (Ed25519, or ECDSA on P-256).' });
      expect(types.every((t) => t.secret.help.length > 0)).toBe(true);
      expect((await fetch(`${admin.base}/api/grant-types`)).status).toBe(401);

      // A page of its own, signed in afresh: the help is asked for as the grants load.
      const fresh = await openPage(browser);
      await signInAt(fresh.page, admin, 'grants', 'Grants');
      const card = fresh.page.locator('article[data-grant="sig"]');
      await card.locator('summary', { hasText: 'Set secret' }).click();
      expect(await card.locator('#secret-sig-help').textContent()).toBe(`${sig?.secret.help} Sent once; never shown again.`);
      expect(fresh.errors).toEqual([]);
      expect(await fresh.violations()).toEqual([]);
      await fresh.context.close();
    },
    SLOW,
  );
});
