// Anomaly holds (issue 90, item 2): requests judged against the agent's own history, through the
// real proxy with real clients (undici, and curl for one), answered through the real admin API.
// Each signal fires and does not fire; `alert` marks the line and tells approvals.notify while the
// request goes on; `hold` waits for a person, bound to the exact body, and only a yes teaches the
// history; a flood of holds is bounded; an agent training its own baseline slowly still bursts; a
// second keyway on the same store shares the history. The policy clock is pinned (and moved) so
// windows and hours are the test's. The canary is the grant's secret: never in a line, a
// notification, a listing or a log.
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-anomaly`;
const AGENTS = ['bot', 'watcher', 'burster', 'trainer', 'night', 'shared'] as const;
const MIN = 60_000;
/**
 * A Wednesday 10:00 UTC (inside the usual hours), a week or two ahead: approvals expire by the
 * pinned clock and are answered by the real one, so the pinned one must not be behind it.
 */
const WEDNESDAY = (() => {
  const d = new Date(Date.now() + 7 * 86_400_000);
  d.setUTCDate(d.getUTCDate() + ((3 - d.getUTCDay() + 7) % 7));
  d.setUTCHours(10, 0, 0, 0);
  return d.getTime();
})();
/** The Saturday after, 02:00 UTC: 03:00 (or 04:00 in summer) in Paris. */
const SATURDAY_NIGHT = WEDNESDAY + 3 * 86_400_000 - 8 * 3_600_000;

interface Approval {
  id: string;
  state: string;
  agent: string;
  rule: string;
  method: string;
  path: string;
  body: { sha256: string } | null;
}
type Line = Record<string, unknown> & {
  agent?: string;
  path?: string;
  status?: number;
  signal?: Array<{ name: string; why: string }>;
  approval?: { outcome: string };
};

describe('anomaly: unusual use held for a person, or marked', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let second: TestProxy | undefined;
  let admin: AdminClient;
  let receiver: Server;
  let clock = WEDNESDAY;
  const agents = new Map<string, ProxyAgent>();
  const secondAgents = new Map<string, ProxyAgent>();
  const notified: Array<Record<string, unknown>> = [];
  const outputs: string[] = [];
  const posted: string[] = [];
  let config: Record<string, unknown>;
  let env: Record<string, string>;

  beforeAll(async () => {
    upstream = await startUpstream({
      requireAuthorization: `Bearer ${SECRET}`,
      handler: (req, res, body) => {
        if (req.method === 'POST') posted.push(body?.toString('utf8') ?? '');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, path: req.url }));
        return true;
      },
    });
    receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        notified.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const allow = [{ grant: 'api', methods: ['GET', 'POST', 'DELETE'] }];
    config = {
      approvals: { notify: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` },
      anomaly: {
        mode: 'hold',
        wait: '30s',
        max_holds_per_agent: 2,
        signals: { burst: { per: '1m', factor: 5 } },
        agents: {
          watcher: { mode: 'alert' },
          trainer: { mode: 'alert' },
          night: { signals: { off_hours: { hours: '08-19', days: 'mon-fri', tz: 'Europe/Paris' } } },
        },
      },
      agents: Object.fromEntries(AGENTS.map((a) => [a, { key: `env:${a.toUpperCase()}_KEY`, grants: ['api'], rules: allow }])),
    };
    env = Object.fromEntries(AGENTS.map((a) => [`${a.toUpperCase()}_KEY`, `${a}-key`]));
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env,
      config,
      now: () => new Date(clock),
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    for (const a of AGENTS) agents.set(a, new ProxyAgent({ uri: `http://${a}:${a}-key@127.0.0.1:${proxy.port}`, requestTls: { ca } }));
    admin = adminClient(proxy);
  });

  afterAll(async () => {
    for (const a of [...agents.values(), ...secondAgents.values()]) await a.close();
    const texts = [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs, JSON.stringify(notified)];
    for (const text of texts) expect(findLeak(text, SECRET), 'the canary in an output').toBeUndefined();
    await second?.stop();
    await proxy?.stop();
    await upstream?.close();
    await new Promise((r) => receiver?.close(r));
  });

  async function call(agent: string, method: string, path: string, body?: string, via = agents) {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: via.get(agent)!,
      method: method as 'GET',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body,
    });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'] };
  }

  async function pending(agent: string, path: string): Promise<Approval> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await admin.call('GET', '/api/approvals');
      outputs.push(r.text);
      const found = (r.body as { approvals: Approval[] }).approvals.find((a) => a.agent === agent && a.path === path && a.state === 'pending');
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no pending approval for ${agent} ${path}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async function answer(id: string, verb: 'approve' | 'deny') {
    const r = await admin.call('POST', `/api/approvals/${id}/${verb}`, verb === 'deny' ? { reason: 'not now' } : {});
    expect(r.status).toBe(200);
  }

  const lines = (agent: string, path?: string): Line[] =>
    (proxy.auditLines() as Line[]).filter((l) => l.agent === agent && l['decision'] !== 'approval' && (path === undefined || l.path === path));
  const lastLine = (agent: string, path: string) => waitFor(() => lines(agent, path).at(-1), `${agent}'s line for ${path}`);
  const sentUp = (path: string) => upstream.seen.filter((s) => s.url === path).length;

  it('hold: a first use waits for a person, naming the signal; the yes releases it and teaches: the same use later passes unasked', async () => {
    const first = call('bot', 'GET', '/repos/acme/issues');
    const asked = await pending('bot', '/repos/acme/issues');
    expect(asked.rule).toBe('anomaly: first_use');
    expect(sentUp('/repos/acme/issues')).toBe(0);
    await answer(asked.id, 'approve');
    expect(await first).toMatchObject({ status: 200 });
    const line = await lastLine('bot', '/repos/acme/issues');
    expect(line.signal).toEqual([{ name: 'first_use', why: 'first use of grant api by this agent' }]);
    expect(line.approval).toMatchObject({ outcome: 'once' });
    // Taught: the same grant, host, class and method again is usual (another id in the same class too).
    expect(await call('bot', 'GET', '/repos/acme/issues?page=2')).toMatchObject({ status: 200 });
    expect(await call('bot', 'GET', '/repos/acme/pulls/7')).toMatchObject({ status: 200 });
    expect((await lastLine('bot', '/repos/acme/pulls/7')).signal).toBeUndefined();
  });

  it('hold: a new method and a new path class are held; a no teaches nothing (asked again), a yes is bound to its exact body', async () => {
    const body = '{"title":"one"}';
    const post = call('bot', 'POST', '/repos/acme/issues', body);
    const asked = await pending('bot', '/repos/acme/issues');
    expect(asked).toMatchObject({ method: 'POST', rule: 'anomaly: new_method' });
    await answer(asked.id, 'deny');
    expect(await post).toMatchObject({ status: 403, code: 'approval_denied' });
    expect(sentUp('/repos/acme/issues')).toBe(1); // the GET only
    // The no taught nothing: the same POST is asked again.
    const again = call('bot', 'POST', '/repos/acme/issues', body);
    const second = await pending('bot', '/repos/acme/issues');
    expect(second.id).not.toBe(asked.id);
    await answer(second.id, 'approve');
    expect(await again).toMatchObject({ status: 200 });
    expect(posted).toEqual([body]);
    // A path class never called on this host.
    const admin2 = call('bot', 'GET', '/admin/keys');
    const cls = await pending('bot', '/admin/keys');
    expect(cls.rule).toBe('anomaly: new_host');
    await answer(cls.id, 'deny');
    expect(await admin2).toMatchObject({ status: 403, code: 'approval_denied' });
    expect((await lastLine('bot', '/admin/keys')).signal?.[0]?.why).toMatch(/^path class \/admin\/keys on api\.example\.test:\d+ never called before$/);
  });

  it('alert: the request goes on at once, its line says why, approvals.notify is told; the next is not marked', async () => {
    expect(await call('watcher', 'DELETE', '/repos/acme/branches/x?token=q')).toMatchObject({ status: 200 });
    const line = await lastLine('watcher', '/repos/acme/branches/x');
    expect(line.signal?.map((s) => s.name)).toEqual(['first_use']);
    expect(line.approval).toBeUndefined();
    const told = await waitFor(() => notified.find((n) => n['type'] === 'keyway.anomaly.alert'), 'the alert');
    expect(told['alert']).toMatchObject({ agent: 'watcher', grant: 'api', method: 'DELETE', path_class: '/repos/acme', signals: [{ name: 'first_use' }] });
    expect(JSON.stringify(told)).not.toContain('token=q');
    // curl, a second client: the same use again is usual.
    const { stdout } = await promisify(execFile)('curl', [
      '-sS',
      '--proxy',
      `http://127.0.0.1:${proxy.port}`,
      '--proxy-user',
      'watcher:watcher-key',
      '--cacert',
      proxy.caPath,
      '--resolve',
      `api.example.test:${upstream.port}:127.0.0.1`,
      '-X',
      'DELETE',
      '-w',
      '\n%{http_code}',
      `https://api.example.test:${upstream.port}/repos/acme/branches/y`,
    ]);
    outputs.push(stdout);
    expect(stdout.trim().split('\n').at(-1)).toBe('200');
    expect((await lastLine('watcher', '/repos/acme/branches/y')).signal).toBeUndefined();
  });

  it('hold: a burst over the agent’s baseline is held; a flood of holds is bounded; a yes teaches the window', async () => {
    clock = WEDNESDAY + 10 * MIN;
    // Taught first (a first use), then up to 5 × the floor baseline of 2 in the window passes.
    const first = call('burster', 'GET', '/v1/items');
    await answer((await pending('burster', '/v1/items')).id, 'approve');
    await first;
    for (let i = 1; i < 10; i++) expect(await call('burster', 'GET', `/v1/items/${i}`)).toMatchObject({ status: 200 });
    const burst = [call('burster', 'GET', '/v1/items/b1'), call('burster', 'GET', '/v1/items/b2')];
    const [a, b] = await Promise.all([pending('burster', '/v1/items/b1'), pending('burster', '/v1/items/b2')]);
    expect(a.rule).toBe('anomaly: burst');
    // Two holds waiting: the third unusual request is refused at once, not held.
    expect(await call('burster', 'GET', '/v1/items/b3')).toMatchObject({ status: 429, code: 'rate_limited' });
    await answer(a.id, 'approve');
    await answer(b.id, 'deny');
    expect(await burst[0]).toMatchObject({ status: 200 });
    expect(await burst[1]).toMatchObject({ status: 403, code: 'approval_denied' });
    expect((await lastLine('burster', '/v1/items/b1')).signal?.[0]?.why).toMatch(/^11 requests in this 1m window, over 5 × its baseline of 2\.0/);
    // The yes raised the baseline past this window's rate: the next few pass unasked.
    expect(await call('burster', 'GET', '/v1/items/after')).toMatchObject({ status: 200 });
    expect((await lastLine('burster', '/v1/items/after')).signal).toBeUndefined();
  });

  it('an agent training its own baseline slowly, just under the limit every minute, still bursts: the baseline at most doubles in a day', async () => {
    clock = WEDNESDAY + 60 * MIN;
    await call('trainer', 'GET', '/t/x/0'); // its first use (alert: marked, learned)
    let marked = 0;
    let sent = 0;
    // 20 minutes, each a little faster than the last, starting under the floor's limit of 10.
    for (let minute = 0; minute < 20; minute++) {
      clock = WEDNESDAY + (61 + minute) * MIN;
      const n = 9 + minute;
      for (let i = 0; i < n; i++) await call('trainer', 'GET', `/t/x/${minute}-${i}`);
      sent += n;
    }
    marked = lines('trainer').filter((l) => l.signal?.some((s) => s.name === 'burst')).length;
    // Uncapped, a baseline following 9, 10, 11… a minute would let all of it pass; capped, the
    // limit stops at 5 × 4 = 20 a minute, so the last minutes' requests past 20 are marked.
    expect(sent).toBe(370);
    expect(marked).toBeGreaterThanOrEqual(8);
    // And a real burst after the training is still one.
    clock = WEDNESDAY + 90 * MIN;
    for (let i = 0; i < 30; i++) await call('trainer', 'GET', `/t/x/burst-${i}`);
    const burstLines = lines('trainer').filter((l) => (l.path ?? '').startsWith('/t/x/burst-') && l.signal?.some((s) => s.name === 'burst'));
    expect(burstLines.length).toBeGreaterThanOrEqual(10);
  });

  it('off hours: outside the usual hours in its time zone is held; inside them it is not', async () => {
    clock = WEDNESDAY + 120 * MIN;
    const first = call('night', 'GET', '/n/x/a');
    await answer((await pending('night', '/n/x/a')).id, 'approve');
    await first;
    expect(await call('night', 'GET', '/n/x/b')).toMatchObject({ status: 200 });
    clock = SATURDAY_NIGHT;
    const late = call('night', 'GET', '/n/x/c');
    const asked = await pending('night', '/n/x/c');
    expect(asked.rule).toBe('anomaly: off_hours');
    await answer(asked.id, 'approve');
    expect(await late).toMatchObject({ status: 200 });
    expect((await lastLine('night', '/n/x/c')).signal?.map((s) => s.why)).toEqual([
      expect.stringMatching(/^Sat 0[34]:00 Europe\/Paris is outside its usual hours$/),
    ]);
    // That hour of the week was taught by the yes.
    expect(await call('night', 'GET', '/n/x/d')).toMatchObject({ status: 200 });
    expect((await lastLine('night', '/n/x/d')).signal).toBeUndefined();
  });

  it('a second keyway on the same store shares the history: what one learned is usual at the other, and their counts add up to a burst', async () => {
    clock = WEDNESDAY + 200 * MIN;
    const first = call('shared', 'GET', '/s/x/0');
    await answer((await pending('shared', '/s/x/0')).id, 'approve');
    await first;
    second = await startProxy({ home: proxy.home, env, config, now: () => new Date(clock) });
    const ca = readFileSync(second.caPath, 'utf8');
    secondAgents.set('shared', new ProxyAgent({ uri: `http://shared:shared-key@127.0.0.1:${second.port}`, requestTls: { ca } }));
    // Learned at the first: usual at the second.
    expect(await call('shared', 'GET', '/s/x/1', undefined, secondAgents)).toMatchObject({ status: 200 });
    // 5 more at each (11 in the window with the 2 above): the second's counts reach the first through the store.
    for (let i = 0; i < 4; i++) expect(await call('shared', 'GET', `/s/x/a${i}`, undefined, secondAgents)).toMatchObject({ status: 200 });
    for (let i = 0; i < 4; i++) expect(await call('shared', 'GET', `/s/x/b${i}`)).toMatchObject({ status: 200 });
    // Counts are stored within a second, and each keyway rereads the store.
    await new Promise((r) => setTimeout(r, 2_500));
    const over = call('shared', 'GET', '/s/x/over');
    const asked = await pending('shared', '/s/x/over');
    expect(asked.rule).toBe('anomaly: burst');
    await answer(asked.id, 'deny');
    expect(await over).toMatchObject({ status: 403, code: 'approval_denied' });
  });
});

describe('anomaly: the signals in a Cedar policy’s context', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let agent: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream({
      requireAuthorization: `Bearer ${SECRET}`,
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return true;
      },
    });
    // <home>/policies/*.cedar: read at start, the home's own.
    const home = makeHome();
    mkdirSync(join(home, 'policies'), { recursive: true });
    const file = join(home, 'policies', 'signals.cedar');
    writeFileSync(
      file,
      '@id("no-new-methods")\nforbid (principal == Agent::"cedarbot", action, resource) when { context has signal && context.signal.contains("new_method") };\n',
      { mode: 0o600 },
    );
    proxy = await startProxy({
      home,
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { CEDARBOT_KEY: 'cedarbot-key' },
      config: {
        anomaly: { mode: 'alert' },
        agents: { cedarbot: { key: 'env:CEDARBOT_KEY', grants: ['api'], rules: [{ grant: 'api', methods: ['GET', 'DELETE'] }] } },
      },
    });
    agent = new ProxyAgent({ uri: `http://cedarbot:cedarbot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await agent?.close();
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs]) expect(findLeak(text, SECRET)).toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  const send = async (method: string, path: string) => {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher: agent, method: method as 'GET' });
    await res.body.dump();
    return { status: res.statusCode, code: res.headers['x-keyway-error'] };
  };

  it('a forbid reading context.signal refuses a method the agent never used, and not one it has', async () => {
    expect(await send('GET', '/c/x/1')).toMatchObject({ status: 200 }); // first_use: marked, not refused
    expect(await send('DELETE', '/c/x/1')).toMatchObject({ status: 403, code: 'rule_denied' });
    expect(await send('GET', '/c/x/2')).toMatchObject({ status: 200 });
    const refused = (proxy.auditLines() as Line[]).find((l) => l['method'] === 'DELETE');
    expect(JSON.stringify(refused)).toContain('no-new-methods');
    expect(upstream.seen.filter((s) => s.method === 'DELETE')).toHaveLength(0);
  });

  it('keyway policy test replays the recorded signals: a candidate forbidding a first use would have refused exactly that line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-anomaly-candidate-'));
    const candidate = join(dir, 'first.cedar');
    writeFileSync(
      candidate,
      '@id("no-first-use")\nforbid (principal, action, resource) when { context has signal && context.signal.contains("first_use") };\n',
      {
        mode: 0o600,
      },
    );
    const r = await proxy.cli(['policy', 'test', '--policy', candidate, '--agent', 'cedarbot', '--json']);
    const report = JSON.parse(r.stdout) as { differing: Array<{ seq: number; verdict: string; deciding: string[] }> };
    const seqOf = (method: string, path: string) => (proxy.auditLines() as Line[]).find((l) => l['method'] === method && l.path === path)?.['seq'];
    const first = report.differing.find((d) => d.seq === seqOf('GET', '/c/x/1'));
    expect(first).toMatchObject({ verdict: 'deny', deciding: ['no-first-use'] });
    // The same agent's usual request carried no signal: the candidate leaves it allowed.
    expect(report.differing.find((d) => d.seq === seqOf('GET', '/c/x/2'))).toBeUndefined();
  });
});

describe('anomaly: a hold nobody answers', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let agent: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { SLOW_KEY: 'slow-key' },
      config: {
        anomaly: { mode: 'hold', wait: '1s' },
        agents: { slow: { key: 'env:SLOW_KEY', grants: ['api'], rules: [{ grant: 'api', methods: ['GET'] }] } },
      },
    });
    agent = new ProxyAgent({ uri: `http://slow:slow-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await agent?.close();
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...proxy.logs]) expect(findLeak(text, SECRET)).toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  it('expires (403 approval_expired, nothing sent) and teaches nothing: the same first use is held again', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await request(`https://api.example.test:${upstream.port}/q/x/1`, { dispatcher: agent });
      await res.body.dump();
      expect({ status: res.statusCode, code: res.headers['x-keyway-error'] }).toEqual({ status: 403, code: 'approval_expired' });
    }
    expect(upstream.seen).toHaveLength(0);
    const held = await waitFor(() => {
      const found = (proxy.auditLines() as Line[]).filter((l) => l.path === '/q/x/1' && l['decision'] !== 'approval');
      return found.length >= 2 ? found : undefined;
    }, 'both lines');
    expect(held.map((l) => l.signal?.map((s) => s.name))).toEqual([['first_use'], ['first_use']]);
  });
});
