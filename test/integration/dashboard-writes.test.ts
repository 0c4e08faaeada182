// The dashboard acts, in chromium, through the admin API with the session and its CSRF token: add a
// static grant (the API's refusal and overlap warning shown), set and replace its secret in a
// password field, add an agent (its proxy URL shown once), rotate its key, change its grants. Each
// change is checked where it matters, with curl through keyway, and in the audit log. The secret
// typed is the canary: it must appear in no page text, no input left filled, no request the page
// makes but the PUT that sends it, no response at all, and no audit line.
import type { Browser, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, type WatchedPage, signInAt } from '../helpers/browser.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 90_000;
const FIRST_SECRET = CANARY;
// Unrelated to the canary's text, so that finding one (or half of one) never stands for another.
const SECOND_SECRET = 'kw-second-4b8e2d7a1c9f';
/** Typed into the add form on an attempt the API refuses: the field must be empty after it too. */
const REFUSED_SECRET = 'kw-refused-6e1f0a3b5d8c';
/** The one request each typed secret may travel in. */
const CARRIERS: Record<string, string> = {
  [REFUSED_SECRET]: 'POST /api/grants',
  [FIRST_SECRET]: 'PUT /api/grants/form/secret',
  [SECOND_SECRET]: 'PUT /api/grants/form/secret',
};
const OLDER_SECRET = 'older-grant-token-31c8';

interface Seen {
  method: string;
  url: string;
  requestBody: string;
  responseBody: string;
  /** How the call was authorised: the session's CSRF header, or an Authorization header. */
  csrf: boolean;
  authorization: boolean;
}

describe('dashboard: writes', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  const seen: Seen[] = [];
  const pending: Array<Promise<void>> = [];
  const agentKeys: string[] = [];
  /** Every request the page sent, answered or not (an event stream, a fetch cut short). */
  const sent: Array<{ method: string; url: string; body: string }> = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'older', type: 'bearer', domains: ['api.example.test'], secret: OLDER_SECRET }] });
    admin = adminClient(proxy);
    browser = await launchChromium();
    watched = await openPage(browser);
    watched.page.on('request', (req) => sent.push({ method: req.method(), url: req.url(), body: req.postData() ?? '' }));
    // Every exchange the page makes, with both bodies (an event stream's never ends: not read; its
    // lines are the audit lines, checked whole below, and what the Audit page shows of them).
    watched.page.on('response', (res: Response) => {
      const req = res.request();
      const streamed = (res.headers()['content-type'] ?? '').startsWith('text/event-stream');
      pending.push(
        (streamed ? Promise.resolve('') : res.text().catch(() => '')).then((body) => {
          const headers = req.headers();
          seen.push({
            method: req.method(),
            url: req.url(),
            requestBody: req.postData() ?? '',
            responseBody: body,
            csrf: (headers['x-keyway-csrf'] ?? '') !== '',
            authorization: headers['authorization'] !== undefined,
          });
        }),
      );
    });
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  /** A request through keyway as the agent whose proxy URL the page showed; the status and what the upstream got. */
  async function asAgent(proxyUrl: string): Promise<{ status: number; authorization?: string; apiKey?: string }> {
    const before = upstream.seen.length;
    const env = cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath });
    const res = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.test:${upstream.port}/echo`], env);
    // A refused CONNECT (407) has no response code of its own: curl names the CONNECT's status on stderr.
    const status = Number(res.stdout) || Number(/CONNECT tunnel failed, response (\d+)/.exec(res.stderr)?.[1]);
    expect(status, res.stderr).toBeGreaterThan(0);
    const got = upstream.seen.length > before ? upstream.seen.at(-1) : undefined;
    return { status, authorization: got?.headers.authorization, apiKey: got?.headers['x-api-key'] as string | undefined };
  }

  /** Nothing the page shows or holds has the secrets typed into it, nor a key once its panel is closed. */
  async function pageHoldsNoSecret(): Promise<void> {
    const { page } = watched;
    const text = (await page.content()) + (await page.evaluate<string>('document.body.innerText'));
    const values = await page.evaluate<string>('JSON.stringify([...document.querySelectorAll("input")].map((i) => i.value))');
    const storage = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })');
    for (const secret of [REFUSED_SECRET, FIRST_SECRET, SECOND_SECRET, OLDER_SECRET, ...agentKeys]) {
      expect(findLeak(text, secret), 'page text').toBeUndefined();
      expect(findLeak(values, secret), 'input values').toBeUndefined();
      expect(findLeak(storage, secret), 'storage').toBeUndefined();
    }
  }

  it(
    'adds a static grant: a refusal in the API’s words, then the overlap warning; the new grant has no secret yet',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'grants', 'Grants');

      const form = page.locator('form[aria-labelledby="add-grant-title"]');
      await form.getByLabel('Id of the new grant').fill('form');
      await form.getByLabel('Type').selectOption('api_key');
      await form.getByLabel('Domains').fill('*');
      await form.getByLabel('Inject into').selectOption('header');
      await form.getByLabel('Header').fill('x-api-key');
      await form.getByLabel('Format').fill('Key {secret}');
      await form.getByLabel('Secret').fill(REFUSED_SECRET);
      await form.getByRole('button', { name: 'Add grant' }).click();
      // The CLI's own check, as the API answers it: a pattern broader than one registrable domain.
      await expect.poll(() => form.locator('[role=alert]').textContent()).toMatch(/domains.*\*/);
      expect(await page.locator('article[data-grant="form"]').count()).toBe(0);
      // Refused, the form stays as typed but for the secret: sent once, then gone from the page.
      expect(await form.getByLabel('Secret').inputValue()).toBe('');
      expect(await form.getByLabel('Domains').inputValue()).toBe('*');
      await pageHoldsNoSecret();

      await form.getByLabel('Domains').fill('api.example.test');
      await form.getByRole('button', { name: 'Add grant' }).click();
      const card = page.locator('article[data-grant="form"]');
      await card.waitFor();
      expect(await card.locator('.badge').textContent()).toBe('no secret');
      expect(await form.locator('[role=alert]').textContent()).toBe('');
      const warnings = page.locator('#grant-warnings');
      await expect.poll(() => warnings.textContent()).toContain('grant "form" overlaps grant "older" on api.example.test');
      expect(await warnings.textContent()).toContain('X-Keyway-Grant');
      expect(await card.textContent()).toContain('Key {secret}');
      await watched.screenshot('dashboard-writes-grant-added');
    },
    SLOW,
  );

  it(
    'sets, then replaces, the secret in a password field that is emptied at once; the grant injects the new one',
    async () => {
      const { page } = watched;
      const card = page.locator('article[data-grant="form"]');
      await card.locator('summary', { hasText: 'Set secret' }).click();
      const field = card.getByLabel('New secret for form');
      expect(await field.getAttribute('type')).toBe('password');
      await field.fill(FIRST_SECRET);
      await card.getByRole('button', { name: 'Set secret of form' }).click();
      await expect.poll(() => page.locator('#notice').textContent()).toBe('Secret of form set; it is not shown again.');
      await expect.poll(() => card.locator('.badge').textContent()).toBe('active');
      await pageHoldsNoSecret();

      await card.locator('summary', { hasText: 'Replace secret' }).click();
      await card.getByLabel('New secret for form').fill(SECOND_SECRET);
      await card.getByRole('button', { name: 'Replace secret of form' }).click();
      await expect.poll(() => page.locator('#notice').textContent()).toBe('Secret of form replaced; it is not shown again.');
      await pageHoldsNoSecret();
      await watched.screenshot('dashboard-writes-secret-set');
    },
    SLOW,
  );

  it(
    'adds an agent bound to the new grant: its proxy URL is shown once, works, and is gone when dismissed',
    async () => {
      const { page } = watched;
      await page.goto(`${admin.base}/#/agents`);
      const form = page.locator('form[aria-labelledby="add-agent-title"]');
      await form.getByLabel('New agent id').fill('bot');
      await form.getByLabel('Every grant, present and future').uncheck();
      await form.getByLabel('form', { exact: true }).check();
      await form.getByRole('button', { name: 'Add agent' }).click();
      const panel = page.locator('#agent-key');
      await panel.getByRole('heading', { name: 'Proxy URL of bot: shown once' }).waitFor();
      expect(await panel.textContent()).toContain('first agent');
      const url = (await page.locator('#agent-key-url').textContent()) ?? '';
      expect(url).toMatch(new RegExp(`^http://bot:[A-Za-z0-9_-]{43}@127\\.0\\.0\\.1:${proxy.port}$`));
      agentKeys.push(decodeURIComponent(new URL(url).password));
      await page.locator('section[data-agent="bot"]').waitFor();
      await watched.screenshot('dashboard-writes-agent-key');

      // Bound to `form` only: no grant_ambiguous although `older` covers the host too.
      expect(await asAgent(url)).toMatchObject({ status: 200, apiKey: `Key ${SECOND_SECRET}` });
      await panel.getByRole('button', { name: 'I have copied it' }).click();
      expect(await panel.isHidden()).toBe(true);
      await pageHoldsNoSecret();
    },
    SLOW,
  );

  it(
    'rotates the key: the new URL is shown once and works, the old one gets 407',
    async () => {
      const { page } = watched;
      const section = page.locator('section[data-agent="bot"]');
      page.once('dialog', (dialog) => void dialog.accept());
      await section.getByRole('button', { name: 'Rotate the key of bot' }).click();
      const panel = page.locator('#agent-key');
      await panel.getByRole('heading', { name: 'Proxy URL of bot: shown once' }).waitFor();
      const url = (await page.locator('#agent-key-url').textContent()) ?? '';
      const oldUrl = `http://bot:${agentKeys[0]}@127.0.0.1:${proxy.port}`;
      expect(url).toMatch(/^http:\/\/bot:/);
      expect(url).not.toBe(oldUrl);
      agentKeys.push(decodeURIComponent(new URL(url).password));
      expect((await asAgent(oldUrl)).status).toBe(407);
      expect((await asAgent(url)).status).toBe(200);
      await panel.getByRole('button', { name: 'I have copied it' }).click();
      await pageHoldsNoSecret();
    },
    SLOW,
  );

  it(
    'changes the agent’s grants: bound to the other grant, it gets that grant’s token',
    async () => {
      const { page } = watched;
      const section = page.locator('section[data-agent="bot"]');
      await section.getByText('Edit the grants of bot').click();
      await section.getByLabel('form', { exact: true }).uncheck();
      await section.getByLabel('older', { exact: true }).check();
      await section.getByRole('button', { name: 'Save the grants of bot' }).click();
      await expect.poll(() => page.locator('#notice').textContent()).toBe('Grants of bot saved.');
      await expect.poll(() => section.locator('tbody th').allTextContents()).toEqual(['older']);
      const listed = await admin.call('GET', '/api/agents');
      expect((listed.body as { agents: Array<{ id: string; grants: string[] }> }).agents.find((a) => a.id === 'bot')?.grants).toEqual(['older']);
      const url = `http://bot:${agentKeys[1]}@127.0.0.1:${proxy.port}`;
      expect(await asAgent(url)).toMatchObject({ status: 200, authorization: `Bearer ${OLDER_SECRET}` });
      await watched.screenshot('dashboard-writes-agent-grants');
    },
    SLOW,
  );

  it(
    'after the writes, every section as screenshotted shows no secret and no key, in its text or its accessibility tree',
    async () => {
      for (const section of ['overview', 'grants', 'agents', 'audit']) {
        const { page } = watched;
        await page.goto(`${admin.base}/#/${section}`);
        await page.getByRole('heading', { level: 1 }).filter({ hasNotText: 'Sign in' }).waitFor();
        if (section === 'audit') {
          // The admin lines of the writes above, read from the log and then live.
          await expect.poll(() => page.locator('#audit-rows tr[data-decision="admin"]').count()).toBeGreaterThanOrEqual(7);
          await expect.poll(() => page.locator('#audit-state').textContent()).toContain('Live');
        }
        await watched.screenshot(`dashboard-writes-after-${section}`);
        // What a screenshot shows is the rendered text; the accessibility tree is what a screen reader reads.
        const shown = (await page.evaluate<string>('document.body.innerText')) + (await page.locator('body').ariaSnapshot());
        for (const secret of [REFUSED_SECRET, FIRST_SECRET, SECOND_SECRET, OLDER_SECRET, ...agentKeys])
          expect(findLeak(shown, secret), section).toBeUndefined();
        await pageHoldsNoSecret();
      }
    },
    SLOW,
  );

  it(
    'each write is one admin audit line; no audit line, response or other request carries a secret',
    async () => {
      await Promise.all(pending);
      const admins = proxy.auditLines().filter((l) => l['decision'] === 'admin' && l['action'] !== 'session.create');
      const writes = admins.map((l) => [l['action'], l['status'], l['grant'] ?? l['agent']]);
      expect(writes).toEqual([
        ['grants.create', 400, null],
        ['grants.create', 201, 'form'],
        ['grants.set_secret', 200, 'form'],
        ['grants.set_secret', 200, 'form'],
        ['agents.create', 201, 'bot'],
        ['agents.rotate_key', 200, 'bot'],
        ['agents.update', 200, 'bot'],
      ]);
      const auditText = JSON.stringify(proxy.auditLines());
      for (const secret of [REFUSED_SECRET, FIRST_SECRET, SECOND_SECRET, OLDER_SECRET, ...agentKeys])
        expect(findLeak(auditText, secret), 'audit').toBeUndefined();

      const puts = seen.filter((s) => s.method === 'PUT' && s.url.endsWith('/api/grants/form/secret'));
      expect(puts.map((s) => JSON.parse(s.requestBody))).toEqual([{ secret: FIRST_SECRET }, { secret: SECOND_SECRET }]);
      // Every write went with the session and its CSRF token, never the admin token.
      const writesSent = seen.filter((s) => s.method !== 'GET' && s.url.includes('/api/') && !s.url.endsWith('/api/session'));
      expect(writesSent.map((s) => s.method)).toEqual(['POST', 'POST', 'PUT', 'PUT', 'POST', 'POST', 'PATCH']);
      for (const s of writesSent) expect([s.csrf, s.authorization], s.url).toEqual([true, false]);
      const secrets = [REFUSED_SECRET, FIRST_SECRET, SECOND_SECRET, OLDER_SECRET, ...agentKeys];
      for (const s of seen) {
        const where = `${s.method} ${s.url}`;
        // No answer carries a secret; an agent's key comes back once, in the answer that made it.
        const keyed = s.method === 'POST' && (s.url.endsWith('/api/agents') || s.url.endsWith('/rotate-key'));
        for (const secret of secrets) {
          if (keyed && agentKeys.includes(secret)) continue;
          expect(findLeak(s.responseBody, secret), `${where} response`).toBeUndefined();
        }
      }
      expect(seen.filter((s) => s.method === 'POST' && s.url.endsWith('/api/agents')).length).toBe(1);
      // Every request the page sent (the event stream's included): a typed secret in exactly one
      // body, the write that sends it; nothing else anywhere, in a body or a URL.
      expect(sent.length).toBeGreaterThanOrEqual(seen.length);
      const carried = new Map<string, string[]>();
      for (const r of sent) {
        const where = `${r.method} ${new URL(r.url).pathname}`;
        for (const secret of secrets) {
          expect(findLeak(r.url, secret), r.url).toBeUndefined();
          if (findLeak(r.body, secret) === undefined) continue;
          expect(JSON.parse(r.body).secret, where).toBe(secret);
          carried.set(secret, [...(carried.get(secret) ?? []), where]);
        }
      }
      expect(Object.fromEntries(carried)).toEqual(Object.fromEntries(Object.entries(CARRIERS).map(([secret, where]) => [secret, [where]])));
      expect(sent.some((r) => r.url.includes('/api/audit/stream'))).toBe(true);
      await pageHoldsNoSecret();
      expect(watched.errors.filter((e) => !e.includes('400 (Bad Request)'))).toEqual([]);
      expect(await watched.violations()).toEqual([]);
    },
    SLOW,
  );

  it(
    'PATCH /api/agents/{agent} refuses what it cannot do, in words, and takes ["*"] for every grant',
    async () => {
      const refusals: Array<[string, unknown, number, RegExp]> = [
        ['/api/agents/bot', { grants: ['nothing'] }, 400, /grants: no grant "nothing" \(known grants: form, older\)/],
        ['/api/agents/bot', { grants: ['*', 'older'] }, 400, /"\*" \(every grant\) stands alone/],
        ['/api/agents/bot', {}, 400, /grants, limits, lease_ttl or max_lease_ttl: required/],
        ['/api/agents/bot', { grants: ['older'], key: 'x' }, 400, /unknown field "key"/],
        ['/api/agents/nobody', { grants: ['older'] }, 404, /no agent "nobody"/],
      ];
      for (const [path, body, status, message] of refusals) {
        const res = await admin.call('PATCH', path, body);
        expect([res.status, (res.body as { error: { message: string } }).error.message], JSON.stringify(body)).toEqual([
          status,
          expect.stringMatching(message),
        ]);
      }
      const every = await admin.call('PATCH', '/api/agents/bot', { grants: ['*'] });
      expect(every.status).toBe(200);
      expect((every.body as { agent: { grants: string[] } }).agent.grants).toEqual(['*']);
    },
    SLOW,
  );
});
