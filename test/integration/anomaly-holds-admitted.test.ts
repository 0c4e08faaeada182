// Anomaly holds as the approvals desk admits them (issue 90, review fixes), through the real proxy
// with real clients, answered through the real admin API:
// - anomaly.max_holds_per_agent is counted where the desk writes the record, under the store's
//   lock: a burst sent all at once cannot have more held than the bound;
// - a question is known by its rule and its signals, not by its displayed (cut) text: a window a
//   person gave one question never covers another, whatever the rule's name's length.
// The canary is the grant's secret: never in a line, a listing or a log.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-anomaly-admitted`;
const AGENTS = ['flood', 'longwin'] as const;
const MIN = 60_000;
/** A path glob long enough that the rule's name passes the 256 characters a question shows. */
const LONG_GLOB = `/${'x'.repeat(300)}/*`;

interface Approval {
  id: string;
  state: string;
  agent: string;
  rule: string;
  path: string;
}

describe('anomaly holds admitted by the desk', () => {
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
              rules: [
                { grant: 'api', methods: ['GET'] },
                { grant: 'api', methods: ['POST'], paths: ['/w/*', LONG_GLOB], approve: 'human', approval: { wait: '30s', window: '15m' } },
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

  it('20 unusual requests sent at once with max_holds_per_agent: 3: exactly 3 held, the other 17 refused 429 at once', async () => {
    // Each is the agent's first use of the grant (nothing taught yet): each is held, or refused.
    const sent = Array.from({ length: 20 }, (_, i) => call('flood', 'GET', `/f/${i}`));
    const done: Array<{ status: number }> = [];
    for (const s of sent) void s.then((r) => done.push(r));
    await waitFor(() => (done.length >= 17 ? true : undefined), 'the refusals');
    expect(done.every((r) => r.status === 429)).toBe(true);
    const held = (await approvals()).filter((a) => a.agent === 'flood' && a.state === 'pending');
    expect(held).toHaveLength(3);
    expect(upstream.seen).toHaveLength(0);
    for (const a of held) await answer(a.id, 'deny');
    const all = await Promise.all(sent);
    expect(all.filter((r) => r.status === 429)).toHaveLength(17);
    expect(all.filter((r) => r.status === 403)).toHaveLength(3);
    expect(upstream.seen).toHaveLength(0);
  });

  it('a rule whose name is over 256 characters: a window given to its new_method question does not cover a later burst (the question is its rule and signals, not its cut text)', async () => {
    // A window's end is set by the real clock (the admin API's): the pinned one starts at the next minute.
    clock = Math.ceil(Date.now() / MIN) * MIN;
    expect(await sendAnswering('longwin', 'GET', '/w/a', 'approve')).toMatchObject({ status: 200 });
    const first = await sendAnswering('longwin', 'POST', '/w/a', 'approve', '{}');
    expect(first.status).toBe(200);
    // As shown, the question is cut: the signal's name does not fit.
    expect(first.asked?.rule).toHaveLength(256);
    expect(first.asked?.rule).not.toContain('anomaly:');
    // Usual rate, inside the window the person gave: up to 5 × 2 a minute pass unasked.
    for (let i = 3; i <= 10; i++) expect(await call('longwin', 'POST', '/w/a', '{}')).toMatchObject({ status: 200 });
    // The 11th in the minute is a burst: another question (same cut text), asked anew; a no refuses it.
    const burst = await sendAnswering('longwin', 'POST', '/w/a', 'deny', '{}');
    expect(burst.asked).toBeDefined();
    expect(burst).toMatchObject({ status: 403, code: 'approval_denied' });
    expect(upstream.seen.filter((s) => s.url === '/w/a')).toHaveLength(10);
  });
});
