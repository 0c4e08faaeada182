// Anomaly histories of agents that are gone (issue 90, item 2's leftovers): a delegated child's
// history (`anomaly:<child>`) leaves the store with the child, revoked at once, expired at the next
// prune (soon after a start), so the store holds at most one history per live agent however many
// children come and go. And a child minted again under a revoked child's id starts fresh: its
// first use is marked, not read as usual from what the old child was taught. Real proxy, real
// admin API, undici through the proxy to a loopback upstream; the canary secret never leaks.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const SECRET = `${CANARY}-prune`;
const LEAD_KEY = 'lead-key-anomaly-prune-0123456789';

type Line = { agent?: string; path?: string; signal?: Array<{ name: string }> };

describe('anomaly: the histories of revoked and expired agents leave the store', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let home: string;
  const config = {
    anomaly: { mode: 'alert' },
    agents: { lead: { key: 'env:LEAD_KEY', grants: ['api'], rules: [{ grant: 'api', methods: ['GET'] }] } },
  };
  const start = async () => {
    proxy = await startProxy({
      ...(home === undefined ? {} : { home }),
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { LEAD_KEY },
      config,
    });
    home = proxy.home;
    admin = adminClient(proxy);
  };

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    await start();
  });

  afterAll(async () => {
    if (proxy !== undefined) {
      expect(findLeak(readFileSync(proxy.auditPath, 'utf8'), SECRET), 'the canary in the audit log').toBeUndefined();
      expect(findLeak(proxy.logs.join('\n'), SECRET), 'the canary in the log').toBeUndefined();
    }
    await proxy?.stop();
    await upstream?.close();
  });

  const histories = () =>
    proxy.running.services.store
      .entries('anomaly:')
      .map(([id]) => id)
      .sort();

  async function mint(name: string, ttl = '20m'): Promise<string> {
    const minted = await admin.call('POST', '/api/agents/lead/delegate', { name, grants: ['api'], ttl });
    expect(minted.status, minted.text).toBe(201);
    return (minted.body as { proxy_url: string }).proxy_url;
  }

  /** One GET through the proxy as the agent of `proxyUrl`, retried while its record reaches the agent table. */
  async function use(proxyUrl: string, path: string): Promise<void> {
    const dispatcher = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      await waitForAsync(async () => {
        const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher });
        await res.body.dump();
        return res.statusCode === 200 ? true : undefined;
      }, `${path} served`);
    } finally {
      await dispatcher.close();
    }
  }

  /** The signals on the agent's line for `path`, once it is written. */
  const marked = async (agent: string, path: string) => {
    const line = await waitForAsync(
      async () => (proxy.auditLines() as Line[]).find((l) => l.agent === agent && l.path === path),
      `${agent}'s line for ${path}`,
    );
    return (line.signal ?? []).map((s) => s.name);
  };

  it('a revoked child takes its history with it; one minted again under its id is new: its first use is marked', async () => {
    await use(await mint('w1'), '/w1/a');
    expect(await marked('w1', '/w1/a')).toEqual(['first_use']);
    expect(histories()).toEqual(['anomaly:w1']);
    const gone = await admin.call('DELETE', '/api/agents/w1');
    expect(gone.status, gone.text).toBe(200);
    expect(histories()).toEqual([]);
    await use(await mint('w1'), '/w1/b');
    expect(await marked('w1', '/w1/b')).toEqual(['first_use']);
    expect((await admin.call('DELETE', '/api/agents/w1')).status).toBe(200);
  });

  it('many children minted, used and revoked leave no history behind: the store stays the size of the live agents', async () => {
    await use(`http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`, '/lead');
    for (let i = 0; i < 8; i++) {
      await use(await mint(`run-${i}`), `/run/${i}`);
      expect(histories()).toEqual(['anomaly:lead', `anomaly:run-${i}`]);
      expect((await admin.call('DELETE', `/api/agents/run-${i}`)).status).toBe(200);
    }
    expect(histories()).toEqual(['anomaly:lead']);
  });

  it('an expired child’s history goes at the next prune (soon after a start); a live one’s and the config agent’s stay', async () => {
    await use(await mint('brief', '3s'), '/brief');
    await use(await mint('steady'), '/steady');
    expect(histories()).toEqual(['anomaly:brief', 'anomaly:lead', 'anomaly:steady']);
    // Its record stays in the store past its expiry (until lead mints again): only its history goes.
    await new Promise((r) => setTimeout(r, 3_500));
    await proxy.stop();
    await start();
    await waitForAsync(async () => (histories().includes('anomaly:brief') ? undefined : true), "the expired child's history pruned");
    expect(histories()).toEqual(['anomaly:lead', 'anomaly:steady']);
    expect(proxy.running.services.store.get('agent:brief')).toBeDefined();
  });
});
