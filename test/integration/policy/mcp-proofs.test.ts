// Replay of MCP traffic: the MCP SDK's own client through a real keyway to the SDK's server on
// loopback, then `keyway policy test` over those lines. Under the policy in effect nothing differs
// (each tools/call is judged again as the proxy's mcp stage judged it, its tool from the line); a
// Cedar candidate forbidding one tool (action mcp_call, context.mcp_tool) flips exactly that call.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../../helpers/keyway.ts';
import { startMcpServer, type TestMcpServer } from '../../helpers/mcp-server.ts';

const TOKEN = `${CANARY}-mcp-proofs`;

type Report = { compared: number; differing: Array<{ seq: number; verdict: string; stage: string; deciding: string[] }>; not_replayable: unknown[] };

describe('policy test over MCP traffic', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    proxy = await startProxy({
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-1' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['tracker'],
            rules: [
              { grant: 'tracker', tools: ['search_*', 'get_issue', 'delete_issue'] },
              { grant: 'tracker', deny: true, tools: ['close_*'] },
            ],
          },
        },
      },
    });
    dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-1@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    const transport = new StreamableHTTPClientTransport(new URL(server.url()), {
      fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    });
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(transport);
    await client.callTool({ name: 'search_issues', arguments: { query: 'x' } });
    await client.callTool({ name: 'delete_issue', arguments: { id: 7 } });
    // Refused by the deny rule: answered as a JSON-RPC error, audited as a refusal.
    await client.callTool({ name: 'close_issue', arguments: { id: 7 } }).catch(() => undefined);
    await client.close();
  });

  afterAll(async () => {
    await dispatcher?.close();
    await proxy?.stop();
    await server?.close();
  });

  const seqOfTool = (tool: string) =>
    proxy.auditLines().find((l) => (l['mcp'] as { tool?: string } | undefined)?.tool === tool && l['phase'] === undefined)?.['seq'] as number;

  it('finds nothing different under the policy in effect', async () => {
    expect(server.calls.map((c) => c.tool)).toEqual(['search_issues', 'delete_issue']);
    const r = await proxy.cli(['policy', 'test', '--json']);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.differing).toEqual([]);
    expect(report.not_replayable).toEqual([]);
    expect(report.compared).toBeGreaterThanOrEqual(3);
    expect(r.stdout).not.toContain(CANARY);
  });

  it('a Cedar forbid on one tool flips exactly that call, named by its id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-mcp-candidate-'));
    writeFileSync(
      join(dir, 'tools.cedar'),
      `@id("no-deleting-issues")\nforbid (principal, action == Action::"mcp_call", resource == Grant::"tracker")\nwhen { context has mcp_tool && context.mcp_tool == "delete_issue" };\n`,
      { mode: 0o600 },
    );
    const report = JSON.parse((await proxy.cli(['policy', 'test', '--policy', dir, '--json'])).stdout) as Report;
    expect(report.differing.map((d) => [d.seq, d.verdict, d.stage, d.deciding])).toEqual([
      [seqOfTool('delete_issue'), 'deny', 'cedar', ['no-deleting-issues']],
    ]);
  });
});
