// A person in the loop (issue 26): a rule with approve: human holds the request until a person
// answers (or, with wait: 0, refuses it at once naming the approval), at the CLI or the admin API.
// Driven with undici through the real proxy, answered with the real CLI in a child process and the
// real admin API; the notify webhook is a loopback receiver. The canary is the grant's secret, and
// a secret the agent put in a body: neither may appear in any listing, preview, notification,
// audit line or log.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-approvals`;
const AGENT_SECRET = `${CANARY}-in-a-body`;

/** An answer's JSON: keyway's refusal body, or the test upstream's echo. */
type Answer = { error: { code: string; message: string }; approval?: { id: string; state: string } } & Record<string, unknown>;

interface Approval {
  id: string;
  state: string;
  path: string;
  method: string;
  agent: string;
  purpose: string | null;
  body: { bytes: number; type: string | null; preview: string | null } | null;
  decision?: { outcome: string; by: string; until?: string; pattern?: boolean; reason?: string };
}

describe('approvals: a person in the loop', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let bot: ProxyAgent;
  let other: ProxyAgent;
  let admin: AdminClient;
  let receiver: Server;
  const notified: Array<Record<string, unknown>> = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({
      requireAuthorization: `Bearer ${SECRET}`,
      handler: (req, res, body) => {
        if (req.url === '/echo') return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, path: req.url, bytes: body?.length ?? 0 }));
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
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key', OTHER_KEY: 'other-key' },
      config: {
        approvals: { notify: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, max_pending_per_agent: 3 },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['api'],
            rules: [
              { grant: 'api', methods: ['GET'] },
              { grant: 'api', methods: ['POST'], paths: ['/repos/*/merges'], approve: 'human', approval: { wait: '20s' } },
              { grant: 'api', methods: ['POST'], paths: ['/pay/**'], approve: 'human', approval: { wait: 0 } },
              { grant: 'api', methods: ['DELETE'], paths: ['/soon/**'], approve: 'human', approval: { wait: '1s' } },
              { grant: 'api', methods: ['PUT', 'DELETE'], paths: ['/repos/**'], approve: 'human', approval: { wait: '20s', window: '15m' } },
            ],
          },
          other: { key: 'env:OTHER_KEY', grants: ['api'], rules: [{ grant: 'api', methods: ['GET'] }] },
        },
      },
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    bot = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca } });
    other = new ProxyAgent({ uri: `http://other:other-key@127.0.0.1:${proxy.port}`, requestTls: { ca } });
    admin = adminClient(proxy);
  });

  afterAll(async () => {
    await bot?.close();
    await other?.close();
    const texts = [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs, JSON.stringify(notified)];
    for (const secret of [SECRET, AGENT_SECRET]) for (const text of texts) expect(findLeak(text, secret), 'a canary in an output').toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
    await new Promise((r) => receiver?.close(r));
  });

  async function call(method: string, path: string, options: { body?: string; type?: string; headers?: Record<string, string>; via?: ProxyAgent } = {}) {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: options.via ?? bot,
      method: method as 'GET',
      headers: { ...(options.type ? { 'content-type': options.type } : {}), ...options.headers },
      body: options.body,
    });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text, json: () => JSON.parse(text) as Answer };
  }

  async function approvals(all = false): Promise<Approval[]> {
    const r = await admin.call('GET', `/api/approvals${all ? '?state=all' : ''}`);
    outputs.push(r.text);
    return (r.body as { approvals: Approval[] }).approvals;
  }

  /** The pending approval of the request on `path`, once the proxy has asked about it. */
  async function pendingFor(path: string): Promise<Approval> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = (await approvals()).find((a) => a.path === path);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no pending approval for ${path}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const sentUpstream = (path: string) => upstream.seen.filter((s) => s.url === path).length;

  it('holds a POST until a person approves it once at the CLI; the same POST later asks again', async () => {
    const held = call('POST', '/repos/acme/merges', {
      body: '{"head":"feature","base":"main"}',
      type: 'application/json',
      headers: { 'X-Keyway-Purpose': 'merge the release branch' },
    });
    const asked = await pendingFor('/repos/acme/merges');
    expect(asked).toMatchObject({ state: 'pending', agent: 'bot', method: 'POST', purpose: 'merge the release branch' });
    expect(asked.body?.preview).toBe('{"head":"feature","base":"main"}');
    expect(sentUpstream('/repos/acme/merges')).toBe(0);

    const cli = await proxy.cli(['approvals', 'approve', asked.id]);
    outputs.push(cli.stdout, cli.stderr);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`approved ${asked.id} (once)`);
    const r = await held;
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ method: 'POST', bytes: 32 });
    expect(sentUpstream('/repos/acme/merges')).toBe(1);

    // The yes was for that request only.
    const again = call('POST', '/repos/acme/merges', { body: '{"head":"feature","base":"main"}', type: 'application/json' });
    const second = await pendingFor('/repos/acme/merges');
    expect(second.id).not.toBe(asked.id);
    await admin.call('POST', `/api/approvals/${second.id}/deny`, {});
    expect((await again).code).toBe('approval_denied');
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['decision'] === 'inject' && (l['approval'] as { id?: string } | undefined)?.id === asked.id),
      'the request line',
    );
    expect(line['approval']).toMatchObject({ outcome: 'once', by: expect.stringContaining('@') });
  });

  it('a deny from the admin API reaches the held client as 403 approval_denied, with the reason', async () => {
    const held = call('POST', '/repos/denied/merges', { body: '{}', type: 'application/json' });
    const asked = await pendingFor('/repos/denied/merges');
    const answer = await admin.call('POST', `/api/approvals/${asked.id}/deny`, { reason: 'not during the freeze' });
    expect(answer.status).toBe(200);
    const r = await held;
    expect(r.status).toBe(403);
    expect(r.code).toBe('approval_denied');
    expect(r.json()).toMatchObject({ error: { code: 'approval_denied' }, approval: { id: asked.id, state: 'denied' } });
    expect(r.json()['error'].message).toContain('not during the freeze');
    expect(sentUpstream('/repos/denied/merges')).toBe(0);
    // Answered once: a second answer is refused.
    expect((await admin.call('POST', `/api/approvals/${asked.id}/approve`, {})).status).toBe(409);
  });

  it('nobody answers in time: 403 approval_expired, and the approval says expired', async () => {
    const started = Date.now();
    const r = await call('DELETE', '/soon/thing');
    expect(r.code).toBe('approval_expired');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const id = (r.json()['approval'] as { id: string }).id;
    const record = (await approvals(true)).find((a) => a.id === id)!;
    expect(record.state).toBe('expired');
    await waitFor(
      () => proxy.auditLines().find((l) => l['decision'] === 'approval' && (l['approval'] as { id: string; outcome: string }).outcome === 'expired'),
      'the expiry line',
    );
  });

  it('wait: 0 answers at once with approval_required; once approved, the same request with the same body passes, once', async () => {
    const body = 'amount=12.50&to=acct-7';
    const first = await call('POST', '/pay/invoices', { body, type: 'application/x-www-form-urlencoded' });
    expect(first.status).toBe(403);
    expect(first.code).toBe('approval_required');
    const id = (first.json()['approval'] as { id: string }).id;
    expect(id).toMatch(/^ap_[a-z2-9]{12}$/);
    // Retried before anyone answered: the same approval, not a new one.
    const early = await call('POST', '/pay/invoices', { body, type: 'application/x-www-form-urlencoded' });
    expect(early.json()['approval']).toMatchObject({ id });
    expect((await approvals()).filter((a) => a.path === '/pay/invoices')).toHaveLength(1);

    expect((await admin.call('POST', `/api/approvals/${id}/approve`, {})).status).toBe(200);
    // A different body is not what was approved.
    const other = await call('POST', '/pay/invoices', { body: 'amount=9999&to=acct-evil', type: 'application/x-www-form-urlencoded' });
    expect(other.code).toBe('approval_required');
    expect((other.json()['approval'] as { id: string }).id).not.toBe(id);
    const passed = await call('POST', '/pay/invoices', { body, type: 'application/x-www-form-urlencoded' });
    expect(passed.status).toBe(200);
    const spent = await call('POST', '/pay/invoices', { body, type: 'application/x-www-form-urlencoded' });
    expect(spent.code).toBe('approval_required');
    expect(sentUpstream('/pay/invoices')).toBe(1);
  });

  it('a window covers the same method and exact path for its length; another path still asks; --pattern widens it', async () => {
    const held = call('PUT', '/repos/acme/topics', { body: '{"names":["a"]}', type: 'application/json' });
    const asked = await pendingFor('/repos/acme/topics');
    const answer = await admin.call('POST', `/api/approvals/${asked.id}/approve`, { for: '15m' });
    expect((answer.body as { approval: Approval }).approval.decision).toMatchObject({ outcome: 'window', by: 'token' });
    expect((await held).status).toBe(200);

    // Inside the window: no asking.
    const next = await call('PUT', '/repos/acme/topics', { body: '{"names":["b"]}', type: 'application/json' });
    expect(next.status).toBe(200);
    expect((await approvals()).filter((a) => a.path === '/repos/acme/topics')).toHaveLength(0);
    // Another path, or another method, asks.
    const elsewhere = call('PUT', '/repos/acme/labels', { body: '{}', type: 'application/json' });
    const asked2 = await pendingFor('/repos/acme/labels');
    // Widened to the rule's patterns (/repos/**), for PUT only.
    const widened = await proxy.cli(['approvals', 'approve', asked2.id, '--for', '10m', '--pattern']);
    expect(widened.code, widened.stderr).toBe(0);
    expect((await elsewhere).status).toBe(200);
    expect((await call('PUT', '/repos/other/anything', { body: '{}', type: 'application/json' })).status).toBe(200);
    const del = call('DELETE', '/repos/other/anything');
    const asked3 = await pendingFor('/repos/other/anything');
    expect(asked3.method).toBe('DELETE');
    await admin.call('POST', `/api/approvals/${asked3.id}/deny`, {});
    expect((await del).code).toBe('approval_denied');
  });

  it('a window never covers a request whose override header names another method', async () => {
    // The window above covers PUT /repos/acme/topics; a server that honours X-HTTP-Method-Override
    // would read this one as DELETE.
    const sneaky = call('PUT', '/repos/acme/topics', { body: '{}', type: 'application/json', headers: { 'X-HTTP-Method-Override': 'DELETE' } });
    const asked = await pendingFor('/repos/acme/topics');
    expect(asked).toMatchObject({ method: 'PUT' });
    expect((asked as unknown as { overrides: string }).overrides).toBe('method DELETE');
    await admin.call('POST', `/api/approvals/${asked.id}/deny`, { reason: 'no' });
    expect((await sneaky).code).toBe('approval_denied');
  });

  it('bounds what is held per agent, and other agents are served while requests are held', async () => {
    // Approvals asked with wait: 0 above stay open for pending_ttl and count: answered first.
    for (const a of await approvals()) await admin.call('POST', `/api/approvals/${a.id}/deny`, {});
    // One connection each: undici would otherwise queue them behind the first, held one.
    const ca = readFileSync(proxy.caPath, 'utf8');
    const own = [1, 2, 3].map(() => new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca } }));
    const held = [1, 2, 3].map((n) => call('POST', `/repos/bound${n}/merges`, { body: '{}', type: 'application/json', via: own[n - 1] }));
    for (const n of [1, 2, 3]) await pendingFor(`/repos/bound${n}/merges`);
    const metrics = (await admin.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/^keyway_approvals_pending 3$/m);
    expect(metrics).toMatch(/^keyway_approval_requests_total\{grant="api",agent="bot",outcome="once"\} [1-9]/m);
    const fourth = await call('POST', '/repos/bound4/merges', { body: '{}', type: 'application/json' });
    expect(fourth.status).toBe(429);
    expect(fourth.code).toBe('rate_limited');
    expect(fourth.json()['error'].message).toContain('max_pending_per_agent');
    // Meanwhile, other requests go through at once.
    expect((await call('GET', '/echo', { via: other })).status).toBe(200);
    expect((await call('GET', '/echo')).status).toBe(200);
    for (const a of (await approvals()).filter((a) => a.path.startsWith('/repos/bound'))) await admin.call('POST', `/api/approvals/${a.id}/deny`, {});
    for (const r of await Promise.all(held)) expect(r.code).toBe('approval_denied');
    for (const a of own) await a.close();
  });

  it('a client that hangs up while held withdraws its approval', async () => {
    const controller = new AbortController();
    const held = request(`https://api.example.test:${upstream.port}/repos/gone/merges`, {
      dispatcher: bot,
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
      signal: controller.signal,
    }).catch((err: Error) => err);
    const asked = await pendingFor('/repos/gone/merges');
    controller.abort();
    await held;
    const deadline = Date.now() + 5_000;
    let state = '';
    while (Date.now() < deadline) {
      state = (await approvals(true)).find((a) => a.id === asked.id)!.state;
      if (state === 'withdrawn') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(state).toBe('withdrawn');
    expect((await admin.call('POST', `/api/approvals/${asked.id}/approve`, {})).status).toBe(409);
    expect(sentUpstream('/repos/gone/merges')).toBe(0);
  });

  it('shows a redacted preview: a secret the agent put in a body reaches no listing, notification or log', async () => {
    const body = JSON.stringify({
      title: 'release',
      password: AGENT_SECRET,
      nested: { api_key: AGENT_SECRET, note: 'ok' },
      token_like: `ghp_${'x'.repeat(36)}`,
    });
    const held = call('POST', '/repos/preview/merges', { body, type: 'application/json' });
    const asked = await pendingFor('/repos/preview/merges');
    expect(asked.body?.preview).toBe('{"title":"release","password":"[redacted]","nested":{"api_key":"[redacted]","note":"ok"},"token_like":"[redacted]"}');
    const shown = await proxy.cli(['approvals', 'show', asked.id]);
    outputs.push(shown.stdout, shown.stderr);
    expect(shown.stdout).toContain('[redacted]');
    const hook = await waitFor(() => notified.find((n) => (n['approval'] as { id: string }).id === asked.id), 'the notification');
    expect(hook).toMatchObject({ type: 'keyway.approval.pending', approval: { agent: 'bot', method: 'POST', path: '/repos/preview/merges', held: true } });
    await admin.call('POST', `/api/approvals/${asked.id}/approve`, {});
    // The upstream got the body as sent: the preview is redacted, the request is not.
    expect((await held).json()).toMatchObject({ bytes: Buffer.byteLength(body) });
  });

  it('shows a form body as what it says: a field holding %0A stays one field, JSON sent as a form is marked raw (issue 60)', async () => {
    const cases = [
      { path: '/repos/formnote/merges', body: 'note=hello%0Aadmin%3Dtrue', preview: 'note: "hello\\nadmin=true"' },
      {
        path: '/repos/jsonform/merges',
        body: '{"amount":12}',
        preview: '[shown raw, not as form fields: field 1 has no equals sign; escaped, secret-looking values redacted]\n{"amount":12}',
      },
    ];
    for (const { path, body, preview } of cases) {
      const held = call('POST', path, { body, type: 'application/x-www-form-urlencoded' });
      const asked = await pendingFor(path);
      expect(asked.body?.preview).toBe(preview);
      const shown = await proxy.cli(['approvals', 'show', asked.id]);
      outputs.push(shown.stdout, shown.stderr);
      expect(shown.stdout).toContain(preview);
      // No line of what a person reads at the CLI poses as a field the body does not have.
      expect(shown.stdout.split('\n').filter((line) => /^admin|=$/.test(line))).toEqual([]);
      const hook = await waitFor(() => notified.find((n) => (n['approval'] as { id: string }).id === asked.id), 'the notification');
      expect((hook['approval'] as { body: { preview: string } }).body.preview).toBe(preview);
      await admin.call('POST', `/api/approvals/${asked.id}/deny`, {});
      expect((await held).code).toBe('approval_denied');
    }
  });

  it('writes every ask, answer and expiry into the audit chain, with who answered, and the chain verifies', async () => {
    const lines = proxy.auditLines().filter((l) => l['decision'] === 'approval');
    const outcomes = new Set(lines.map((l) => (l['approval'] as { outcome: string }).outcome));
    for (const o of ['pending', 'approved_once', 'approved_window', 'denied', 'expired', 'withdrawn']) expect(outcomes).toContain(o);
    const byApi = lines.find((l) => (l['approval'] as { outcome: string; by?: string }).outcome === 'denied');
    expect((byApi!['approval'] as { by: string }).by).toBe('token');
    const query = await proxy.cli(['audit', 'query', '--decision', 'approval']);
    expect(query.code, query.stderr).toBe(0);
    expect(query.stdout).toMatch(/approval ap_[a-z2-9]{12}: denied by token/);
    outputs.push(query.stdout);
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
