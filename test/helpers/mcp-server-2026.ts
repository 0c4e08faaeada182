// A real MCP server of the 2026 SDK (@modelcontextprotocol/server 2.x) on loopback: createMcpHandler
// serves the 2026-07-28 revision (stateless, the MCP-Protocol-Version / Mcp-Method / Mcp-Name headers
// checked against the body) and falls back to stateless 2025 serving for older clients; behind the
// SDK's Express app (createMcpExpressApp: express.json(), which decodes the charset a Content-Type
// names). HTTPS with the test upstream certificate; only `Authorization: Bearer <token>` is served
// (401 otherwise); every tool call it ran is recorded, so a test can tell what reached it.
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createMcpExpressApp } from '@modelcontextprotocol/express';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod/v4';
import { TLS_FIXTURES } from './fixtures.ts';

export interface TestMcpServer2026 {
  port: number;
  url(host?: string): string;
  calls: Array<{ tool: string; args: Record<string, unknown> }>;
  /** How modern (2026) exchanges are answered from now on: one JSON body, or an event stream. */
  mode: 'json' | 'sse';
  /** What each request carried of the revision headers, in order. */
  seen: Array<{ version: string | undefined; method: string | undefined; name: string | undefined }>;
  close(): Promise<void>;
}

export async function startMcpServer2026(token: string): Promise<TestMcpServer2026> {
  const factory = () => {
    const mcp = new McpServer({ name: 'tracker-2026', version: '2.0.0' });
    const record = (tool: string) => async (args: Record<string, unknown>) => {
      state.calls.push({ tool, args });
      return { content: [{ type: 'text' as const, text: `${tool} ran` }] };
    };
    mcp.registerTool('search_issues', { description: 'search issues', inputSchema: z.object({ query: z.string() }) }, record('search_issues'));
    mcp.registerTool('get_issue', { description: 'one issue', inputSchema: z.object({ id: z.number() }) }, record('get_issue'));
    mcp.registerTool('delete_issue', { description: 'delete an issue', inputSchema: z.object({ id: z.number() }) }, record('delete_issue'));
    return mcp;
  };
  const handlers = {
    json: toNodeHandler(createMcpHandler(factory, { responseMode: 'json' })),
    sse: toNodeHandler(createMcpHandler(factory, { responseMode: 'sse' })),
  };
  const app = createMcpExpressApp({ host: '0.0.0.0', allowedHosts: ['api.example.test', '127.0.0.1'] });
  app.use('/mcp', (req, res, next) => {
    const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
    state.seen.push({ version: header('mcp-protocol-version'), method: header('mcp-method'), name: header('mcp-name') });
    if (req.headers.authorization === `Bearer ${token}`) return next();
    res.status(401).json({ error: 'unauthorized' });
  });
  app.all('/mcp', (req, res) => handlers[state.mode](req, res, req.body));
  const server: Server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const state: TestMcpServer2026 = {
    port: (server.address() as AddressInfo).port,
    url: (host = 'api.example.test') => `https://${host}:${state.port}/mcp`,
    calls: [],
    mode: 'json',
    seen: [],
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  return state;
}
