// An MCP server that signs in with OAuth, as the MCP authorization spec has it, built from the MCP
// SDK's own parts: its protected resource metadata router (RFC 9728), its bearer middleware (a 401
// with WWW-Authenticate naming the metadata), and a Streamable HTTP MCP server with one tool,
// `whoami`, behind it. Tokens are checked at the real authorization server (oidc-provider) by
// introspection: active, for this resource, with scope `api`.
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import express from 'express';
import type { AuthServer } from './auth-server.ts';
import { TLS_FIXTURES } from './fixtures.ts';

export interface McpOAuthServer {
  /** https://HOST:PORT/mcp */
  url: string;
  port: number;
  /** Access tokens the server accepted, in order. */
  accepted: string[];
  close(): Promise<void>;
}

export async function startMcpOAuthServer(auth: AuthServer, host = 'api.example.test'): Promise<McpOAuthServer> {
  const app = express();
  const server: Server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const resource = new URL(`https://${host}:${port}/mcp`);
  const accepted: string[] = [];
  const metadata = (await (await fetch(`${auth.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string };

  app.use(mcpAuthMetadataRouter({ oauthMetadata: metadata as never, resourceServerUrl: resource, scopesSupported: ['api', 'offline_access'] }));
  const verifier = {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      const facts = await auth.inspect(token);
      if (facts['active'] !== true) throw new InvalidTokenError('the token is not active');
      accepted.push(token);
      return {
        token,
        clientId: String(facts['client_id']),
        scopes: String(facts['scope'] ?? '').split(' '),
        expiresAt: Number(facts['exp']),
        resource: typeof facts['aud'] === 'string' ? new URL(facts['aud']) : undefined,
      };
    },
  };
  const bearer = requireBearerAuth({
    verifier,
    requiredScopes: ['api'],
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resource),
    expectedResource: resource,
  });
  app.post('/mcp', express.json(), bearer, async (req, res) => {
    const mcp = new McpServer({ name: 'oauth-test', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'who the token belongs to' }, async (extra) => ({
      content: [{ type: 'text', text: `client ${(extra as { authInfo?: AuthInfo }).authInfo?.clientId ?? '?'}` }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.get('/mcp', bearer, (_req, res) => void res.status(405).end());

  return {
    url: resource.href,
    port,
    accepted,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
