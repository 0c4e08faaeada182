// Policy as code on MCP (issue 88): a tools/call is Cedar's action mcp_call with context.mcp_tool.
// The MCP SDK's own client through keyway: a forbidden tool comes back as a JSON-RPC error naming
// rule_denied and the policy's @id, and never reaches the server; other tools run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-tracker-token`;

describe('Cedar mcp_call through the proxy', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    const home = makeHome();
    mkdirSync(join(home, 'policies'), { mode: 0o700 });
    writeFileSync(
      join(home, 'policies', 'mcp.cedar'),
      '@id("no-deleting-tools")\nforbid (principal, action == Action::"mcp_call", resource == Grant::"tracker")\nwhen { context has mcp_tool && context.mcp_tool like "delete_*" };\n',
      { mode: 0o600 },
    );
    proxy = await startProxy({
      home,
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-1' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: { bot: { key: 'env:BOT_KEY', grants: ['tracker'] } },
      },
    });
    dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-1@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  it('refuses a forbidden tool as a JSON-RPC error naming the policy, and runs the others', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(server.url()), {
      fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    });
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(transport);
    try {
      const found = await client.callTool({ name: 'search_issues', arguments: { query: 'x' } });
      expect(found.content).toEqual([{ type: 'text', text: 'search_issues ran' }]);
      const refused = await client.callTool({ name: 'delete_issue', arguments: { id: 7 } }).then(
        () => undefined,
        (err: Error & { code?: number; data?: { code: string } }) => err,
      );
      expect(refused?.data?.code).toBe('rule_denied');
      expect(refused?.message).toContain('no-deleting-tools');
      expect(server.calls.map((c) => c.tool)).toEqual(['search_issues']);
    } finally {
      await client.close();
    }
    const line = await waitFor(() => proxy.auditLines().findLast((l) => l['code'] === 'rule_denied'), 'the refusal line');
    expect(line).toMatchObject({ decision: 'deny', rule: 'no-deleting-tools', mcp: { method: 'tools/call', tool: 'delete_issue' } });
    expect(line['policy']).toBe(proxy.auditLines().find((l) => l['action'] === 'policy.load')?.['policy']);
  });
});
