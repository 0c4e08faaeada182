// A hold-then-approve cycle an agent could turn on its own baseline (issue 90, item 4): a person
// gives a rule's window (approve: human, window 10m) to a request the anomaly stage held too. Later
// requests on that path under the rule alone pass on the window, as windows do; but a burst over
// the agent's baseline on the same path is a new question: it is held for a person, not waved
// through by the window (which would also have taught the burst, raising the baseline unasked).
// Real proxy, undici through it to a loopback upstream, answered through the real admin API. The
// real clock (a window's end is read by it): the burst window is an hour, begun early in one. The
// canary never leaks.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

const SECRET = `${CANARY}-window`;
interface Approval {
  id: string;
  state: string;
  agent: string;
  rule: string;
  path: string;
}

describe('anomaly: a rule’s window does not cover a burst held on the same path', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let bot: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key-window-0123456789' },
      config: {
        // factor 1.5 over the floor baseline of 2: a fourth request in the window is a burst.
        anomaly: { mode: 'hold', wait: '30s', signals: { burst: { per: '1h', factor: 1.5 } } },
        agents: {
          bot: { key: 'env:BOT_KEY', grants: ['api'], rules: [{ grant: 'api', methods: ['GET'], approve: 'human', approval: { window: '10m', wait: '30s' } }] },
        },
      },
    });
    bot = new ProxyAgent({ uri: `http://bot:bot-key-window-0123456789@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    admin = adminClient(proxy);
  });

  afterAll(async () => {
    await bot?.close();
    if (proxy !== undefined) {
      expect(findLeak(readFileSync(proxy.auditPath, 'utf8'), SECRET), 'the canary in the audit log').toBeUndefined();
      expect(findLeak(proxy.logs.join('\n'), SECRET), 'the canary in the log').toBeUndefined();
    }
    await proxy?.stop();
    await upstream?.close();
  });

  async function get(path: string): Promise<{ status: number; code: string | string[] | undefined }> {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher: bot });
    const text = await res.body.text();
    expect(findLeak(text, SECRET)).toBeUndefined();
    return { status: res.statusCode, code: res.headers['x-keyway-error'] };
  }

  const pending = (path: string) =>
    waitForAsync(async () => {
      const r = await admin.call('GET', '/api/approvals');
      return (r.body as { approvals: Approval[] }).approvals.find((a) => a.path === path && a.state === 'pending');
    }, `a pending approval for ${path}`);

  it('the window passes the rule’s next requests; the burst on that path waits for a person; a no refuses it, nothing sent', async () => {
    // The four requests must share the hour's window: not begun in its last minute.
    const intoHour = Date.now() % 3_600_000;
    if (intoHour > 3_540_000) await new Promise((r) => setTimeout(r, 3_600_000 - intoHour + 500));
    const first = get('/reports/q1');
    const asked = await pending('/reports/q1');
    expect(asked.rule).toContain('anomaly: first_use');
    expect((await admin.call('POST', `/api/approvals/${asked.id}/approve`, {})).status).toBe(200);
    expect(await first).toMatchObject({ status: 200 });
    // Within the window, under the rule alone: passed unasked (2 and 3 of the window's 3).
    expect(await get('/reports/q1')).toMatchObject({ status: 200 });
    expect(await get('/reports/q1')).toMatchObject({ status: 200 });
    const sent = upstream.seen.length;
    // The fourth is a burst: a new question, not the one the window answered.
    const burst = get('/reports/q1');
    const held = await pending('/reports/q1');
    expect(held.rule).toContain('anomaly: burst');
    expect((await admin.call('POST', `/api/approvals/${held.id}/deny`, { reason: 'not now' })).status).toBe(200);
    expect(await burst).toMatchObject({ status: 403, code: 'approval_denied' });
    expect(upstream.seen.length).toBe(sent);
  });
});
