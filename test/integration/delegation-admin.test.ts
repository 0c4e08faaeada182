import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminClient, adminClient } from '../helpers/admin-api.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89: `POST /api/agents/{agent}/delegate`, the admin API's door to the operation
// `keyway agents delegate` runs: the same terms, the same refusals, audited as agent.delegate.

describe('admin API: delegation', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { LEAD_KEY: 'lead-key-0123456789abcdef' },
      config: { agents: { lead: { key: 'env:LEAD_KEY', grants: ['github', 'openai'] } } },
      grants: [
        { id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'openai', type: 'bearer', domains: ['other.example.test'], secret: 'sk-openai-test' },
        { id: 'slack', type: 'bearer', domains: ['tunnel.example.test'], secret: 'xoxb-test' },
      ],
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const curl = async (proxyUrl: string) => {
    const r = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    return Number(r.stdout);
  };

  it('mints a child with a subset of the grants; its key works through the proxy; audited', async () => {
    const minted = await admin.call('POST', '/api/agents/lead/delegate', { name: 'helper', grants: ['github'], ttl: '20m' });
    expect(minted.status, minted.text).toBe(201);
    const body = minted.body as { id: string; key: string; proxy_url: string; chain: string[]; grants: string[] };
    expect(body).toMatchObject({ id: 'helper', parent: 'lead', chain: ['lead', 'helper'], grants: ['github'] });
    expect(body.proxy_url).toContain(`helper:${body.key}@`);
    await waitForAsync(async () => ((await curl(body.proxy_url)) === 200 ? true : undefined), 'the child to be served');
    const line = await waitForAsync(async () => proxy.auditLines().find((l) => l['action'] === 'agent.delegate' && l['agent'] === 'helper'), 'the audit line');
    expect(line).toMatchObject({ decision: 'admin' });
    expect(JSON.stringify(line)).not.toContain(body.key);
  });

  it('refuses what is wider than the parent with 403 delegation_refused, and bad input with 400, writing nothing', async () => {
    const wide = await admin.call('POST', '/api/agents/lead/delegate', { name: 'wide', grants: ['slack'] });
    expect(wide.status).toBe(403);
    expect((wide.body as { error: { code: string; message: string } }).error).toMatchObject({ code: 'delegation_refused' });
    expect((wide.body as { error: { message: string } }).error.message).toContain('"slack"');
    expect((await admin.call('POST', '/api/agents/lead/delegate', { name: 'deep', depth: 1 })).status).toBe(403);
    expect((await admin.call('POST', '/api/agents/lead/delegate', { name: 'odd', depth: 'one' })).status).toBe(400);
    expect((await admin.call('POST', '/api/agents/lead/delegate', { name: 'odd', surprise: true })).status).toBe(400);
    expect((await admin.call('POST', '/api/agents/nobody/delegate', { name: 'orphan' })).status).toBe(404);
    expect((await admin.call('POST', '/api/agents/lead/delegate', { name: 'helper' })).status).toBe(409);
    const listed = (await admin.call('GET', '/api/agents')).body as { agents: Array<{ id: string; parent: string | null }> };
    expect(listed.agents.map((a) => a.id).sort()).toEqual(['helper', 'lead']);
    expect(listed.agents.find((a) => a.id === 'helper')?.parent).toBe('lead');
  });
});
