import { readFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { waitFor } from '../helpers/wait.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';

// An MCP endpoint spelled as the server routes it (issue 46, high). The MCP SDK's Express app routes
// case-insensitively and with or without a trailing slash, so `POST /MCP` and `/Mcp/` reach the same
// endpoint as `/mcp`. An agent whose only rule is a deny on delete_* must not get delete_issue run by
// spelling the endpoint differently, over HTTP/1.1 or HTTP/2; tools/list on such a spelling is cut
// as on /mcp, and the audit line records the MCP call. The control shows the server itself does run
// delete_issue at each spelling (with the token, without keyway), so the test proves keyway's part.

const TOKEN = `${CANARY}-mcp-spelling-token`;
const SPELLINGS = ['/MCP', '/Mcp/', '/mcp/', '/mCp'];

describe('MCP endpoints are found as the server routes them', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    proxy = await startProxy({
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-1' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['tracker'], rules: [{ grant: 'tracker', deny: true, tools: ['delete_*'] }] } },
      },
    });
    dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-1@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  const message = (id: number, method: string, params: Record<string, unknown> = {}) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
  const deleteCall = (id: number) => message(id, 'tools/call', { name: 'delete_issue', arguments: { id: 7 } });
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const ran = (tool: string) => server.calls.filter((c) => c.tool === tool).length;

  it('control: the server runs delete_issue at every spelling when called directly with its token', async () => {
    const direct = new Agent({ connect: { ca: TLS_FIXTURES.ca, servername: 'api.example.test' } });
    try {
      for (const path of SPELLINGS) {
        const before = ran('delete_issue');
        const res = await request(`https://127.0.0.1:${server.port}${path}`, {
          dispatcher: direct,
          method: 'POST',
          headers: { ...headers, authorization: `Bearer ${TOKEN}` },
          body: deleteCall(1),
        });
        await res.body.dump();
        expect(res.statusCode, path).toBe(200);
        expect(ran('delete_issue'), path).toBe(before + 1);
      }
    } finally {
      await direct.close();
    }
  });

  it('HTTP/1.1: a deny rule holds on every spelling; the refusal is audited with its MCP call', async () => {
    const before = ran('delete_issue');
    for (const [i, path] of SPELLINGS.entries()) {
      const res = await request(server.url('api.example.test', path), { dispatcher, method: 'POST', headers, body: deleteCall(100 + i) });
      const text = await res.body.text();
      outputs.push(text);
      const answer = JSON.parse(text) as { id: number; error?: { data?: { code?: string } } };
      expect(answer.id, path).toBe(100 + i);
      expect(answer.error?.data?.code, path).toBe('policy_denied');
    }
    expect(ran('delete_issue')).toBe(before);
    // Each refusal has its line, with the MCP call it refused (the path as sent).
    const deniedAt = () =>
      new Set(
        proxy
          .auditLines()
          .filter((l) => l['decision'] === 'deny' && (l['mcp'] as { tool?: string } | undefined)?.tool === 'delete_issue')
          .map((l) => String(l['path']).replace(/\/$/, '')),
      );
    const expected = SPELLINGS.map((p) => p.replace(/\/$/, ''));
    await waitFor(() => (expected.every((p) => deniedAt().has(p)) ? true : undefined), 'a deny line with its MCP call for each spelling');
  });

  it('HTTP/1.1: an allowed call at another spelling is judged and runs; tools/list there is cut', async () => {
    const before = ran('search_issues');
    const res = await request(server.url('api.example.test', '/MCP'), {
      dispatcher,
      method: 'POST',
      headers,
      body: message(3, 'tools/call', { name: 'search_issues', arguments: { query: 'x' } }),
    });
    outputs.push(await res.body.text());
    expect(res.statusCode).toBe(200);
    expect(ran('search_issues')).toBe(before + 1);
    const list = await request(server.url('api.example.test', '/Mcp/'), { dispatcher, method: 'POST', headers, body: message(4, 'tools/list') });
    const text = await list.body.text();
    outputs.push(text);
    const tools = (JSON.parse(text) as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name);
    expect(tools).toContain('search_issues');
    expect(tools).not.toContain('delete_issue');
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['path'] === '/MCP' && (l['mcp'] as { tool?: string } | undefined)?.tool === 'search_issues'),
      'the audit line of the call at /MCP',
    );
    expect(line['decision']).toBe('inject');
  });

  it('HTTP/2: a deny rule holds on every spelling', async () => {
    const session: ClientHttp2Session = await h2ThroughProxy(proxy.port, `api.example.test:${server.port}`, proxy.caPath, 'bot:bot-key-1');
    try {
      const before = ran('delete_issue');
      for (const [i, path] of SPELLINGS.entries()) {
        const res = await h2Request(session, { ':method': 'POST', ':path': path, ...headers }, deleteCall(200 + i));
        const text = res.body.toString('utf8');
        outputs.push(text);
        const answer = JSON.parse(text) as { id: number; error?: { data?: { code?: string } } };
        expect(answer.error?.data?.code, path).toBe('policy_denied');
      }
      expect(ran('delete_issue')).toBe(before);
    } finally {
      session.close();
    }
  });
});
