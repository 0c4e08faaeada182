// The Audit page says what `keyway audit tail` says about a line: a refusal's message and hint (as
// the agent was told), how many copies of the secret the leak guard redacted from an answer, and
// the purpose an agent stated for a request. Real traffic through keyway with curl, plus a line
// carrying `purpose` appended to the same chained log by a second writer, as another process does.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditWriter, type AuditEvent } from '../../src/audit/index.ts';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage, signInAt } from '../helpers/browser.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 60_000;
const PURPOSE = 'triage issue 42 for the <b>weekly</b> report';

describe('dashboard: audit page details', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [
        // /echo answers with the request's headers, the injected Authorization among them.
        { id: 'echoer', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'gone', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-gone`, status: 'revoked' },
      ],
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

  async function through(host: string): Promise<void> {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const res = await curl(['-sS', '-o', '/dev/null', `https://${host}:${upstream.port}/echo`], env);
    expect(res.code, res.stderr).toBe(0);
  }

  const lineOf = (grant: string) => proxy.auditLines().find((l) => l['grant'] === grant && l['decision'] !== 'admin');

  it(
    'shows a refusal’s message and hint, and the leak guard’s count, as the audit line has them',
    async () => {
      await through('api.example.test');
      await through('other.example.test');
      // The audit line is written as the answer ends: it may land a moment after curl exits.
      await expect.poll(() => lineOf('echoer') !== undefined && lineOf('gone') !== undefined).toBe(true);
      const redacted = lineOf('echoer');
      const refused = lineOf('gone');
      expect(redacted?.['leak_redacted']).toBeGreaterThan(0);
      expect(refused).toMatchObject({ code: 'grant_needs_reconnect', message: expect.any(String), hint: expect.any(String) });

      const { page } = watched;
      await signInAt(page, admin, 'audit', 'Audit');
      const refusedRow = page.locator(`#audit-rows tr[data-id="${String(refused?.['id'])}"]`);
      await refusedRow.waitFor();
      expect(await refusedRow.locator('.message').textContent()).toBe(refused?.['message']);
      expect(await refusedRow.locator('.hint').textContent()).toBe(`hint: ${String(refused?.['hint'])}`);

      const count = Number(redacted?.['leak_redacted']);
      const redactedRow = page.locator(`#audit-rows tr[data-id="${String(redacted?.['id'])}"]`);
      expect(await redactedRow.locator('.redacted').textContent()).toBe(` · ${count} ${count === 1 ? 'copy' : 'copies'} of the secret redacted`);
      expect(await redactedRow.locator('.message').count()).toBe(0);
      await watched.screenshot('dashboard-audit-details');
    },
    SLOW,
  );

  it(
    'shows the purpose an agent stated, as text, on a line that arrives live',
    async () => {
      const { page } = watched;
      await expect.poll(() => page.locator('#audit-state').textContent(), { timeout: 20_000 }).toContain('Live');
      const { paths, auditHeadKey } = proxy.running.services;
      const writer = await AuditWriter.open({ path: paths.audit, headPath: paths.auditHead, headKey: auditHeadKey });
      // `purpose` is the agent's X-Keyway-Purpose; written here as a second process would write it.
      const event = {
        ts: new Date().toISOString(),
        id: 'with-purpose-1',
        agent: null,
        grant: 'echoer',
        decision: 'inject',
        code: null,
        method: 'GET',
        host: 'api.example.test',
        port: 443,
        path: '/issues/42',
        status: 200,
        duration_ms: 3,
        refreshed: false,
        client: '127.0.0.1',
        purpose: PURPOSE,
      } as AuditEvent;
      await writer.write(event);
      await writer.close();
      const row = page.locator('#audit-rows tr[data-id="with-purpose-1"]');
      await row.waitFor({ timeout: 20_000 });
      expect(await row.locator('.purpose').textContent()).toBe(`purpose: ${PURPOSE}`);
      expect(await page.locator('#audit-rows b').count()).toBe(0);
      // Lines without these fields show none of them.
      expect(await page.locator('#audit-rows .purpose').count()).toBe(1);

      const text = (await page.content()) + (await page.evaluate<string>('document.body.innerText'));
      expect(findLeak(text, CANARY)).toBeUndefined();
      expect(watched.errors).toEqual([]);
      expect(await watched.violations()).toEqual([]);
      await watched.screenshot('dashboard-audit-purpose');
    },
    SLOW,
  );
});
