// A real MCP server on loopback for the MCP policy tests: the MCP SDK's McpServer behind its
// Streamable HTTP transport (stateless), over HTTPS with the test upstream certificate, answering
// POSTs as JSON or as a server-sent event stream (`mode`). It accepts only `Authorization: Bearer
// <token>` with the token it was given (401 otherwise, which a test shows), and records every tool
// call it ran, so a test can tell what reached it.
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express from 'express';
import { z } from 'zod';
import { TLS_FIXTURES } from './fixtures.ts';

export interface TestMcpServer {
  port: number;
  /** https://HOST:PORT/mcp */
  url(host?: string): string;
  /** Tool calls the server ran: name and arguments. */
  calls: Array<{ tool: string; args: Record<string, unknown> }>;
  /** JSON (enableJsonResponse) or SSE answers to POSTs, from now on. */
  mode: 'json' | 'sse';
  /** Requests refused for a wrong or missing token. */
  unauthorized: number;
  close(): Promise<void>;
}

export const MCP_TOOLS = ['search_issues', 'get_issue', 'create_comment', 'close_issue', 'delete_issue'] as const;

export async function startMcpServer(token: string): Promise<TestMcpServer> {
  const app = express();
  const server: Server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const state: TestMcpServer = {
    port: (server.address() as AddressInfo).port,
    url: (host = 'api.example.test') => `https://${host}:${state.port}/mcp`,
    calls: [],
    mode: 'json',
    unauthorized: 0,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };

  const build = () => {
    const mcp = new McpServer({ name: 'tracker', version: '1.0.0' });
    const record = (tool: string) => async (args: Record<string, unknown>) => {
      state.calls.push({ tool, args });
      return { content: [{ type: 'text' as const, text: `${tool} ran` }] };
    };
    mcp.registerTool('search_issues', { description: 'search issues', inputSchema: { query: z.string() } }, record('search_issues'));
    mcp.registerTool('get_issue', { description: 'one issue', inputSchema: { id: z.number() } }, record('get_issue'));
    mcp.registerTool('create_comment', { description: 'comment on an issue', inputSchema: { repo: z.string(), body: z.string() } }, record('create_comment'));
    mcp.registerTool('close_issue', { description: 'close an issue', inputSchema: { id: z.number() } }, record('close_issue'));
    mcp.registerTool('delete_issue', { description: 'delete an issue', inputSchema: { id: z.number() } }, record('delete_issue'));
    return mcp;
  };

  app.use('/mcp', (req, res, next) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      state.unauthorized++;
      res.status(401).json({ error: 'unauthorized' });
      return;
    }
    next();
  });
  app.post('/mcp', express.json({ limit: '4mb' }), async (req, res) => {
    const mcp = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: state.mode === 'json' });
    res.on('close', () => void transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  // Stateless: no event stream to open, no session to end.
  app.get('/mcp', (_req, res) => void res.status(405).set('allow', 'POST').end());
  app.delete('/mcp', (_req, res) => void res.status(405).set('allow', 'POST').end());
  return state;
}
