// Issue 89 item 4, the dashboard's Agents page in chromium: delegated agents drawn under their
// parent (a tree), each with its expiry; removing a store agent asks first, naming how many agents
// delegated below it go with it, and then they are gone: their keys refused through the proxy.
// The admin API's listing says parent, expires_at and chain, which the page draws from.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt, type WatchedPage } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const SLOW = 90_000;
const SECRET = `${CANARY}-agents-tree`;

interface Listed {
  id: string;
  parent: string | null;
  expires_at: string | null;
  chain: string[] | null;
}

describe('the Agents page draws the delegation tree and removes a subtree', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let browser: Browser;
  let watched: WatchedPage;
  const urls = new Map<string, string>();

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { LEAD_KEY: 'lead-key-tree-0123456789' },
      config: { agents: { lead: { key: 'env:LEAD_KEY', grants: ['api'] } } },
    });
    admin = adminClient(proxy);
    const added = await proxy.cli(['agents', 'add', 'boss', '--grants', 'api', '--json']);
    expect(added.code, added.stderr).toBe(0);
    for (const [parent, name, ttl] of [
      ['lead', 'worker', '30m'],
      ['boss', 'w1', '20m'],
      ['boss', 'w2', '40m'],
    ] as const) {
      const minted = await proxy.cli(['agents', 'delegate', parent, '--name', name, '--ttl', ttl, '--json']);
      expect(minted.code, minted.stderr).toBe(0);
      urls.set(name, (JSON.parse(minted.stdout) as { proxy_url: string }).proxy_url);
    }
    browser = await launchChromium();
    watched = await openPage(browser);
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  async function statusAs(name: string): Promise<number> {
    const url = new URL(urls.get(name)!);
    const dispatcher = new ProxyAgent({
      uri: `http://${url.host}`,
      token: `Basic ${Buffer.from(`${url.username}:${decodeURIComponent(url.password)}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
    });
    try {
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher });
      await res.body.text();
      return res.statusCode;
    } catch {
      return 407; // the tunnel refused: a key the proxy does not know
    } finally {
      await dispatcher.close();
    }
  }
  const listed = async (): Promise<Listed[]> => ((await admin.call('GET', '/api/agents')).body as { agents: Listed[] }).agents;

  it('the admin API lists each agent with parent, expires_at and chain', async () => {
    const agents = await listed();
    expect(agents.find((a) => a.id === 'lead')).toMatchObject({ parent: null, expires_at: null, chain: null });
    expect(agents.find((a) => a.id === 'boss')).toMatchObject({ parent: null, chain: null });
    const worker = agents.find((a) => a.id === 'worker')!;
    expect(worker).toMatchObject({ parent: 'lead', chain: ['lead', 'worker'] });
    expect(Date.parse(worker.expires_at!) - Date.now()).toBeGreaterThan(25 * 60_000);
  });

  it(
    'children are drawn inside their parent, with their expiry',
    async () => {
      const { page } = watched;
      await signInAt(page, admin, 'agents', 'Agents');
      const worker = page.locator('section[data-agent="lead"] > .agent-children > section[data-agent="worker"]');
      await worker.waitFor();
      expect(await worker.getAttribute('data-parent')).toBe('lead');
      expect(await worker.locator('header h3').textContent()).toBe('worker');
      expect(await worker.locator('header').textContent()).toContain('delegated by lead');
      const expiry = (await listed()).find((a) => a.id === 'worker')!.expires_at;
      expect(await worker.locator('header .expiry time').getAttribute('datetime')).toBe(expiry);
      for (const name of ['w1', 'w2']) await page.locator(`section[data-agent="boss"] > .agent-children > section[data-agent="${name}"]`).waitFor();
      // A child is never drawn at the top as well.
      expect(await page.locator('#agent-list > section[data-agent="worker"]').count()).toBe(0);
      expect(await page.locator('#agent-list > section.card.agent').count()).toBe(2);
      expect(await watched.violations()).toEqual([]);
      expect(await page.content()).not.toContain(CANARY);
      await watched.screenshot('dashboard-agents-tree');
    },
    SLOW,
  );

  it(
    'removing a parent asks first, naming its descendants; cancelled, nothing goes; confirmed, the subtree goes and its keys are refused',
    async () => {
      const { page } = watched;
      expect(await statusAs('w1')).toBe(200);
      const boss = page.locator('section[data-agent="boss"]');
      const remove = boss.getByRole('button', { name: 'Remove boss and its 2 descendants' });
      expect(await remove.textContent()).toBe('Remove with 2 descendants');
      const asked: string[] = [];
      page.once('dialog', (dialog) => {
        asked.push(dialog.message());
        void dialog.dismiss();
      });
      await remove.click();
      await expect.poll(() => asked.length).toBe(1);
      expect(asked[0]).toBe('Remove boss and the 2 agents delegated below it (w1, w2)? Their keys are refused at once and their open connections cut.');
      expect((await listed()).map((a) => a.id)).toEqual(expect.arrayContaining(['boss', 'w1', 'w2']));

      page.once('dialog', (dialog) => void dialog.accept());
      await remove.click();
      await boss.waitFor({ state: 'detached' });
      expect((await listed()).map((a) => a.id).sort()).toEqual(['lead', 'worker']);
      await waitForAsync(async () => ((await statusAs('w1')) === 407 ? true : undefined), "the removed child's key refused");
      expect(await statusAs('w2')).toBe(407);
      expect(await statusAs('worker')).toBe(200);
      // A leaf child has a plain Remove; the page stays clean.
      expect(await page.locator('section[data-agent="worker"] > .remove').getByRole('button').textContent()).toBe('Remove');
      expect(await watched.violations()).toEqual([]);
      const line = proxy.auditLines().find((l) => l['action'] === 'agents.delete' && l['agent'] === 'boss');
      expect(line).toMatchObject({ decision: 'admin', status: 200 });
    },
    SLOW,
  );

  it('keyway agents rm names the descendants it removed, in text and JSON', async () => {
    for (const root of ['solo', 'duo']) {
      expect((await proxy.cli(['agents', 'add', root, '--grants', 'api'])).code).toBe(0);
      expect((await proxy.cli(['agents', 'delegate', root, '--name', `${root}-w`])).code).toBe(0);
    }
    const json = await proxy.cli(['agents', 'rm', 'solo', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ removed: 'solo', descendants: ['solo-w'] });
    const text = await proxy.cli(['agents', 'rm', 'duo']);
    expect(text.stdout.trim()).toBe('removed agent duo, and the 1 delegated below it: duo-w');
    const leaf = await proxy.cli(['agents', 'rm', 'worker']);
    expect(leaf.stdout.trim()).toBe('removed agent worker');
    // The CLI wrote the store from another process: the proxy's listing follows within its change feed.
    await waitForAsync(async () => ((await listed()).map((a) => a.id).join() === 'lead' ? true : undefined), 'the listing without the removed agents');
  });
});
