// Issue 60: an agent whose config lists rules and no grants may use only the grants its rules name
// (default deny). Before, its rules limited only the grants they named, and every other grant was
// open to it: the approvals doc's own example had that shape. Driven with undici through the real
// proxy to a real loopback upstream; the listing is the real admin API's, the Agents page is read in
// chromium.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { launchChromium, openPage, signInAt } from '../helpers/browser.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const API_SECRET = `${CANARY}-api`;
const OTHER_SECRET = `${CANARY}-other`;

describe('an agent with rules and no grants', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let bot: ProxyAgent;
  let open: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: API_SECRET },
        { id: 'other', type: 'bearer', domains: ['other.example.test'], secret: OTHER_SECRET },
      ],
      env: { BOT_KEY: 'bot-key', OPEN_KEY: 'open-key' },
      config: {
        agents: {
          // The shape of the approvals doc's example: rules on one grant, no grants: list.
          bot: { key: 'env:BOT_KEY', rules: [{ grant: 'api', methods: ['GET'] }] },
          // No rules and no grants: every grant, as before.
          open: { key: 'env:OPEN_KEY' },
        },
      },
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    bot = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca } });
    open = new ProxyAgent({ uri: `http://open:open-key@127.0.0.1:${proxy.port}`, requestTls: { ca } });
  });

  afterAll(async () => {
    await bot?.close();
    await open?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  async function get(host: string, via: ProxyAgent) {
    const res = await request(`https://${host}:${upstream.port}/echo`, { dispatcher: via });
    await res.body.text();
    return { status: res.statusCode, code: res.headers['x-keyway-error'] };
  }

  it('uses the grant its rules name, as they say', async () => {
    expect((await get('api.example.test', bot)).status).toBe(200);
  });

  it('is refused every other grant, and its secret never leaves', async () => {
    const seen = upstream.seen.length;
    expect(await get('other.example.test', bot)).toEqual({ status: 403, code: 'host_not_allowed' });
    expect(upstream.seen.slice(seen)).toEqual([]);
    // An agent with neither rules nor grants still uses every grant.
    expect((await get('other.example.test', open)).status).toBe(200);
  });

  it('is listed with only those grants, each with the rules that restrict it', async () => {
    const { body } = await adminClient(proxy).call('GET', '/api/agents');
    type Listed = { id: string; grants: string[]; rules: Record<string, number>; leases: Array<{ grant: string }> };
    const agents = (body as { agents: Listed[] }).agents;
    const listed = agents.find((a) => a.id === 'bot')!;
    expect(listed.grants).toEqual(['api']);
    expect(listed.leases.map((l) => l.grant)).toEqual(['api']);
    expect(listed.rules).toEqual({ api: 1 });
    expect(agents.find((a) => a.id === 'open')).toMatchObject({ grants: ['*'], rules: {} });
  });

  it("the dashboard's Agents page says a grant its rules restrict is allowed as they say, not always", async () => {
    const browser = await launchChromium();
    try {
      const { page, errors } = await openPage(browser);
      await signInAt(page, adminClient(proxy), 'agents', 'Agents');
      const bot = page.locator('section[data-agent="bot"]');
      await bot.waitFor();
      expect(await bot.locator('tbody tr').count()).toBe(1);
      expect(await bot.locator('tr[data-grant="api"] td').textContent()).toBe('allowed when its rule allows (no lease_ttl)');
      const open = page.locator('section[data-agent="open"]');
      expect(await open.locator('tr[data-grant="other"] td').textContent()).toBe('always allowed (no rules, no lease_ttl)');
      expect(await page.locator('body').textContent()).not.toContain(CANARY);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
