// A real MCP server on loopback for the MCP policy tests: the MCP SDK's McpServer behind its
// Streamable HTTP transport (stateless), over HTTPS with the test upstream certificate, answering
// POSTs as JSON or as a server-sent event stream (`mode`). It accepts only `Authorization: Bearer
// <token>` with the token it was given (401 otherwise, which a test shows), and records every tool
// call it ran, so a test can tell what reached it. Two readers of the same server, as deployed:
// `/mcp` is the SDK's Express app (createMcpExpressApp: express.json(), which decodes the charset a
// Content-Type names, UTF-7 included), `/raw/mcp` the transport reading the body itself (UTF-8).
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { z } from 'zod';
import { TLS_FIXTURES } from './fixtures.ts';

export interface TestMcpServer {
  port: number;
  /** https://HOST:PORT/mcp (the Express app), or another path (/raw/mcp: the transport reading the body itself) */
  url(host?: string, path?: string): string;
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
  // The Express app as the SDK makes it (its Host check allows the test's host name).
  const app = createMcpExpressApp({ host: '0.0.0.0', allowedHosts: ['api.example.test', '127.0.0.1'] });
  const server: Server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) =>
    req.url?.startsWith('/raw/mcp') ? void raw(req, res) : app(req, res),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const state: TestMcpServer = {
    port: (server.address() as AddressInfo).port,
    url: (host = 'api.example.test', path = '/mcp') => `https://${host}:${state.port}${path}`,
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

  const serve = async (req: IncomingMessage, res: ServerResponse, parsed: unknown) => {
    const mcp = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: state.mode === 'json' });
    res.on('close', () => void transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res, parsed);
  };
  const authorized = (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.authorization === `Bearer ${token}`) return true;
    state.unauthorized++;
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
    return false;
  };
  // The transport reads the body itself: no body parser in front.
  const raw = async (req: IncomingMessage, res: ServerResponse) => {
    if (!authorized(req, res)) return;
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    await serve(req, res, undefined);
  };
  app.use('/mcp', (req, res, next) => {
    if (authorized(req, res)) next();
  });
  app.post('/mcp', (req, res) => serve(req, res, req.body));
  // Stateless: no event stream to open, no session to end.
  app.get('/mcp', (_req, res) => void res.status(405).set('allow', 'POST').end());
  app.delete('/mcp', (_req, res) => void res.status(405).set('allow', 'POST').end());
  return state;
}
