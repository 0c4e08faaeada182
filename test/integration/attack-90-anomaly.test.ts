// Attacking anomaly holds (issue 90, item 4) through the real proxy, as a hostile agent would:
// - a window a person gave for a rule's usual requests must not wave through a burst, nor let each
//   request of the burst teach the baseline (a hold is bound to its exact body; only a person's yes
//   to that held request teaches);
// - a no teaches nothing; an approved burst hold admits that one request;
// - slow training: an agent going a little faster each minute never reaches a new normal.
// The policy clock is pinned and moved, so windows are the test's. The canary is the grant's
// secret: never in a line, a listing or a log.
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-attack-anomaly`;
const AGENTS = ['win', 'denied', 'slow', 'racer', 'quoted', 'chunky'] as const;
const MIN = 60_000;
/** A Wednesday 10:00 UTC a week or more ahead (approvals expire by the pinned clock). */
const WEDNESDAY = (() => {
  const d = new Date(Date.now() + 7 * 86_400_000);
  d.setUTCDate(d.getUTCDate() + ((3 - d.getUTCDay() + 7) % 7));
  d.setUTCHours(10, 0, 0, 0);
  return d.getTime();
})();

interface Approval {
  id: string;
  state: string;
  agent: string;
  rule: string;
  path: string;
}
type Line = Record<string, unknown> & { agent?: string; path?: string; signal?: Array<{ name: string }>; approval?: { outcome: string } };

describe('attack 90: anomaly holds', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let clock = Date.now();
  const agents = new Map<string, ProxyAgent>();
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: Object.fromEntries(AGENTS.map((a) => [`${a.toUpperCase()}_KEY`, `${a}-key`])),
      config: {
        anomaly: { mode: 'hold', wait: '30s', max_holds_per_agent: 3, signals: { burst: { per: '1m', factor: 5 } } },
        agents: Object.fromEntries(
          AGENTS.map((a) => [
            a,
            {
              key: `env:${a.toUpperCase()}_KEY`,
              grants: ['api'],
              // A quota is counted in the store: a stage that awaits between the judging and the counting.
              ...(a === 'quoted' ? { limits: { quota: { requests: '10000/day' } } } : {}),
              rules: [
                { grant: 'api', methods: ['GET'] },
                // A body cap reads a chunked body before the rules decide: a stage that awaits between judging and counting.
                { grant: 'api', methods: ['PUT'], max_body: '1KiB' },
                { grant: 'api', methods: ['POST'], paths: ['/w/*'], approve: 'human', approval: { wait: '30s', window: '15m' } },
              ],
            },
          ]),
        ),
      },
      now: () => new Date(clock),
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    for (const a of AGENTS) agents.set(a, new ProxyAgent({ uri: `http://${a}:${a}-key@127.0.0.1:${proxy.port}`, requestTls: { ca } }));
    admin = adminClient(proxy);
  });

  afterAll(async () => {
    for (const a of agents.values()) await a.close();
    await proxy?.stop();
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs]) {
      expect(findLeak(text, SECRET), 'the canary in an output').toBeUndefined();
    }
    await upstream?.close();
  });

  async function call(agent: string, method: string, path: string, body?: string) {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: agents.get(agent)!,
      method: method as 'GET',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body,
    });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'] };
  }

  async function approvals(): Promise<Approval[]> {
    const r = await admin.call('GET', '/api/approvals');
    outputs.push(r.text);
    return (r.body as { approvals: Approval[] }).approvals;
  }

  async function answer(id: string, verb: 'approve' | 'deny') {
    const r = await admin.call('POST', `/api/approvals/${id}/${verb}`, verb === 'deny' ? { reason: 'no' } : {});
    expect(r.status).toBe(200);
  }

  /** Sends the request; if a person is asked, answers `verb` and says so. */
  async function sendAnswering(agent: string, method: string, path: string, verb: 'approve' | 'deny', body?: string) {
    let done = false;
    const sent = call(agent, method, path, body).finally(() => {
      done = true;
    });
    let asked: Approval | undefined;
    while (!done && asked === undefined) {
      asked = (await approvals()).find((a) => a.agent === agent && a.path === path && a.state === 'pending');
      if (asked === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    if (asked !== undefined) await answer(asked.id, verb);
    return { ...(await sent), asked };
  }

  const lines = (agent: string, path: string) =>
    (proxy.auditLines() as Line[]).filter((l) => l.agent === agent && l.path === path && l['decision'] !== 'approval');
  const sentUp = (path: string) => upstream.seen.filter((s) => s.url === path).length;

  it('a window given for a rule’s usual requests does not wave a burst through, nor lets the burst teach the baseline', async () => {
    // A window's end is set by the real clock (the admin API's): the pinned one starts at the next
    // minute, so the window covers the minutes this test moves through.
    clock = Math.ceil(Date.now() / MIN) * MIN;
    // Taught: its first use (GET), then its first POST (the rule asks and new_method): a person gives the rule's 15m window.
    expect(await sendAnswering('win', 'GET', '/w/a', 'approve')).toMatchObject({ status: 200 });
    const first = await sendAnswering('win', 'POST', '/w/a', 'approve', '{}');
    expect(first.asked?.rule).toMatch(/approve: human.*; anomaly: new_method/);
    expect(first.status).toBe(200);
    // Usual rate, inside the window: 2 so far, up to 5 × 2 a minute pass unasked.
    for (let i = 3; i <= 10; i++) expect(await call('win', 'POST', '/w/a', '{}')).toMatchObject({ status: 200 });
    expect(sentUp('/w/a')).toBe(10);
    // The 11th in the minute is a burst: asked of a person despite the window; a no refuses it.
    const burst = await sendAnswering('win', 'POST', '/w/a', 'deny', '{}');
    expect(burst.asked?.rule).toMatch(/anomaly: burst/);
    expect(burst).toMatchObject({ status: 403, code: 'approval_denied' });
    expect(sentUp('/w/a')).toBe(10);
    // And the burst taught nothing: a minute later the limit is still about 5 × a baseline near 2.
    clock += MIN;
    let passed = 0;
    for (let i = 0; i < 30; i++) {
      const r = await sendAnswering('win', 'POST', '/w/a', 'deny', '{}');
      if (r.asked !== undefined) break;
      passed++;
    }
    expect(passed).toBeLessThanOrEqual(15);
  });

  it('a no teaches nothing (the burst is asked again each time); a yes to a held burst admits that one request', async () => {
    clock = WEDNESDAY + 20 * MIN;
    expect(await sendAnswering('denied', 'GET', '/w/d', 'approve')).toMatchObject({ status: 200 });
    for (let i = 2; i <= 10; i++) expect(await call('denied', 'GET', `/w/d/${i}`)).toMatchObject({ status: 200 });
    // Denied burst after burst: each asked again.
    for (let i = 0; i < 3; i++) {
      const r = await sendAnswering('denied', 'GET', '/w/d/more', 'deny');
      expect(r.asked?.rule).toBe('anomaly: burst');
      expect(r).toMatchObject({ status: 403, code: 'approval_denied' });
    }
    expect(sentUp('/w/d/more')).toBe(0);
    // A yes lets exactly that request through (once): its line says so.
    const yes = await sendAnswering('denied', 'GET', '/w/d/more', 'approve');
    expect(yes).toMatchObject({ status: 200 });
    expect(sentUp('/w/d/more')).toBe(1);
    const line = await waitFor(() => lines('denied', '/w/d/more').find((l) => l.approval?.outcome === 'once'), 'the line of the approved burst');
    expect(line.signal?.map((s) => s.name)).toEqual(['burst']);
  });

  it.each(['racer', 'quoted'])(
    'a burst sent all at once (in parallel) is judged request by request: no more than the limit passes unasked (%s)',
    async (agent) => {
      clock = WEDNESDAY + (agent === 'racer' ? 60 : 90) * MIN;
      expect(await sendAnswering(agent, 'GET', '/r/x', 'approve')).toMatchObject({ status: 200 });
      let done = false;
      const sending = Promise.all(Array.from({ length: 30 }, (_, i) => call(agent, 'GET', `/r/x/${i}`))).finally(() => {
        done = true;
      });
      // Every burst held is denied as it appears (a no teaches nothing).
      while (!done) {
        for (const a of (await approvals()).filter((x) => x.agent === agent && x.state === 'pending'))
          await admin.call('POST', `/api/approvals/${a.id}/deny`, { reason: 'no' });
        await new Promise((r) => setTimeout(r, 20));
      }
      const all = await sending;
      // 1 taught + 9 more make the limit of 5 × 2 in the minute; the rest are held (denied) or refused at once.
      expect(all.filter((r) => r.status === 200).length).toBeLessThanOrEqual(9);
      expect(all.filter((r) => r.code === 'approval_denied' || r.code === 'rate_limited').length).toBeGreaterThanOrEqual(21);
    },
    120_000,
  );

  it('a burst of chunked bodies, each slow to arrive, is still counted request by request', async () => {
    clock = WEDNESDAY + 100 * MIN;
    expect(await sendAnswering('chunky', 'PUT', '/c/x', 'approve', '{}')).toMatchObject({ status: 200 });
    async function* slowBody() {
      await new Promise((r) => setTimeout(r, 300));
      yield Buffer.from('{}');
    }
    let done = false;
    const sending = Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(`https://api.example.test:${upstream.port}/c/x/${i}`, {
          dispatcher: agents.get('chunky')!,
          method: 'PUT',
          body: Readable.from(slowBody()),
        }).then(async (r) => {
          outputs.push(await r.body.text());
          return { status: r.statusCode, code: r.headers['x-keyway-error'] };
        }),
      ),
    ).finally(() => {
      done = true;
    });
    while (!done) {
      for (const a of (await approvals()).filter((x) => x.agent === 'chunky' && x.state === 'pending'))
        await admin.call('POST', `/api/approvals/${a.id}/deny`, { reason: 'no' });
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = await sending;
    expect(all.filter((r) => r.status === 200).length).toBeLessThanOrEqual(9);
  }, 120_000);

  it('slow training: 10% faster every minute for 12 minutes, the limit at most doubles in the day', async () => {
    clock = WEDNESDAY + 120 * MIN;
    expect(await sendAnswering('slow', 'GET', '/s/x', 'approve')).toMatchObject({ status: 200 });
    let asked = 0;
    let rate = 8;
    for (let minute = 1; minute <= 12; minute++) {
      clock = WEDNESDAY + (120 + minute) * MIN;
      for (let i = 0; i < rate; i++) {
        const r = await sendAnswering('slow', 'GET', `/s/x/${minute}-${i}`, 'deny');
        if (r.asked !== undefined) {
          asked++;
          break;
        }
      }
      rate = Math.ceil(rate * 1.1);
    }
    // The baseline (from 2) at most doubles in a UTC day: from then on 5 × 4 = 20 a minute is the limit.
    expect(asked).toBeGreaterThan(0);
    clock = WEDNESDAY + 170 * MIN;
    let passed = 0;
    for (let i = 0; i < 40; i++) {
      const r = await sendAnswering('slow', 'GET', `/s/x/y-${i}`, 'deny');
      if (r.asked !== undefined) break;
      passed++;
    }
    expect(passed).toBeLessThanOrEqual(20);
  }, 180_000);
});
