// An override header does not get around new_method / new_host (s98 review, finding 2): the policy
// reads every method and path a request names (X-HTTP-Method-Override, `?_method=`, X-Original-URL),
// and so does the anomaly history. Through the real proxy under `anomaly: {mode: hold}`: an agent
// that learned POST sends POST naming DELETE (by header, then by `?_method=`), or a path it never
// called by X-Original-URL: each is held for a person, and a no keeps it from the upstream. A yes
// teaches that exact reading only. The canary is the grant's secret: in no line or log.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SECRET = `${CANARY}-anomaly-overrides`;

interface Approval {
  id: string;
  state: string;
  agent: string;
  rule: string;
}

describe('anomaly: override headers are judged as what they name', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let agent: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${SECRET}` });
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key' },
      config: {
        anomaly: { mode: 'hold', wait: '30s', max_holds_per_agent: 3 },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['api'], rules: [{ grant: 'api', methods: ['GET', 'POST', 'DELETE'] }] } },
      },
    });
    agent = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    admin = adminClient(proxy);
  });

  afterAll(async () => {
    await agent?.close();
    await proxy?.stop();
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs])
      expect(findLeak(text, SECRET), 'the canary in an output').toBeUndefined();
    await upstream?.close();
  });

  async function call(path: string, headers: Record<string, string> = {}) {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{}',
    });
    outputs.push(await res.body.text());
    return { status: res.statusCode, code: res.headers['x-keyway-error'] };
  }

  /** Sends the request; if a person is asked, answers `verb` and returns what was asked. */
  async function sendAnswering(path: string, verb: 'approve' | 'deny', headers: Record<string, string> = {}) {
    let done = false;
    const sent = call(path, headers).finally(() => {
      done = true;
    });
    let asked: Approval | undefined;
    while (!done && asked === undefined) {
      const r = await admin.call('GET', '/api/approvals');
      outputs.push(r.text);
      asked = (r.body as { approvals: Approval[] }).approvals.find((a) => a.agent === 'bot' && a.state === 'pending');
      if (asked === undefined) await new Promise((res) => setTimeout(res, 20));
    }
    if (asked !== undefined) {
      const r = await admin.call('POST', `/api/approvals/${asked.id}/${verb}`, verb === 'deny' ? { reason: 'no' } : {});
      expect(r.status).toBe(200);
    }
    return { ...(await sent), asked };
  }
  const sentUp = (path: string) => upstream.seen.filter((s) => s.url === path).length;

  it('an agent that learned POST is held for POST naming DELETE (header or ?_method=) or a path it never called', async () => {
    // Taught: its first use of the grant (a POST to /items), a person's yes.
    expect(await sendAnswering('/items', 'approve')).toMatchObject({ status: 200 });
    expect(await sendAnswering('/items', 'deny')).toMatchObject({ status: 200, asked: undefined });
    expect(sentUp('/items')).toBe(2);

    const overDelete = await sendAnswering('/items', 'deny', { 'X-HTTP-Method-Override': 'DELETE' });
    expect(overDelete.asked?.rule).toBe('anomaly: new_method');
    expect(overDelete).toMatchObject({ status: 403, code: 'approval_denied' });
    const byQuery = await sendAnswering('/items?_method=DELETE', 'deny');
    expect(byQuery.asked?.rule).toBe('anomaly: new_method');
    expect(byQuery).toMatchObject({ status: 403, code: 'approval_denied' });
    const byPath = await sendAnswering('/items', 'deny', { 'X-Original-URL': '/admin/keys' });
    expect(byPath.asked?.rule).toBe('anomaly: new_host');
    expect(byPath).toMatchObject({ status: 403, code: 'approval_denied' });
    expect(sentUp('/items')).toBe(2);
    expect(sentUp('/items?_method=DELETE')).toBe(0);
    const line = (proxy.auditLines() as Array<Record<string, unknown>>).find((l) => l['method_override'] === 'DELETE' && l['code'] === 'approval_denied');
    expect(JSON.stringify(line?.['signal'])).toContain('method POST (X-HTTP-Method-Override: DELETE) never used on grant api');

    // A yes teaches that exact reading: the same override again passes unasked; the wire POST stays usual.
    expect(await sendAnswering('/items', 'approve', { 'X-HTTP-Method-Override': 'DELETE' })).toMatchObject({ status: 200 });
    expect(await sendAnswering('/items', 'deny', { 'X-HTTP-Method-Override': 'DELETE' })).toMatchObject({ status: 200, asked: undefined });
    expect(await sendAnswering('/items', 'deny')).toMatchObject({ status: 200, asked: undefined });
  }, 120_000);
});
