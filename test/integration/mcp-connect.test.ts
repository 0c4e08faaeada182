// `keyway connect --mcp URL` (issue 27): an MCP server that signs in with OAuth, built from the MCP
// SDK's own auth parts, in front of a real authorization server (oidc-provider) with dynamic client
// registration and resource indicators. keyway discovers the server's metadata, registers its own
// client, runs the code flow with PKCE and `resource`, stores the grant, and then the MCP SDK's
// client reaches the server through keyway, which injects and refreshes the token. Hostile
// metadata (another resource, another issuer, no S256) is refused. The 2026-07-28 revision's ways
// too: a Client ID Metadata Document as the client (the authorization server fetches it from where
// the operator hosts it), preferred to registration; and the authorization response's `iss`
// (RFC 9207), without which or with another issuer's the flow is refused (a mix-up).
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { type RunningConnect, runConnect, waitForOutput } from '../helpers/connect-process.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpOAuthServer, type McpOAuthServer } from '../helpers/mcp-oauth-server.ts';

describe('keyway connect --mcp', () => {
  let auth: AuthServer;
  let mcp: McpOAuthServer;
  let proxy: TestProxy;
  let documents: Server;
  let documentUrl: string;
  /** What the authorization server fetched from the document host. */
  const fetched: string[] = [];
  const outputs: string[] = [];
  // The authorization server's way out to the document host: the test CA, test names on loopback.
  const documentAgent = new Agent({
    connect: {
      ca: TLS_FIXTURES.ca,
      lookup: (_host, options, callback) =>
        (options as { all?: boolean }).all ? callback(null, [{ address: '127.0.0.1', family: 4 }] as never) : callback(null, '127.0.0.1', 4),
    },
  });

  beforeAll(async () => {
    // Where the operator hosts keyway's Client ID Metadata Document: what `keyway oauth client-metadata` prints.
    let hosted: unknown;
    documents = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      fetched.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=30' }).end(JSON.stringify(hosted));
    });
    documents.listen(0, '127.0.0.1');
    await once(documents, 'listening');
    documentUrl = `https://docs.example.test:${(documents.address() as AddressInfo).port}/keyway/client.json`;
    auth = await startAuthServer({
      mcp: true,
      clientMetadataDocuments: { fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: documentAgent })) as unknown as typeof fetch },
    });
    mcp = await startMcpOAuthServer(auth);
    proxy = await startProxy({});
    const printed = await proxy.cli(['oauth', 'client-metadata', documentUrl]);
    expect(printed.code, printed.stderr).toBe(0);
    hosted = JSON.parse(printed.stdout);
  });
  afterAll(async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const token of mcp.accepted)
      for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, token), 'a token in an output').toBeUndefined();
    await proxy?.stop();
    await mcp?.close();
    await auth?.close();
    await new Promise((r) => documents?.close(r));
    await documentAgent.close();
  });

  const connect = (args: string[]) => runConnect(proxy, args);
  /** The access token a grant of the store holds once connect stored it. */
  async function waitForToken(grant: string): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const record = proxy.running.services.store.get<{ secret?: { accessToken?: string } }>(`grant:${grant}`);
      const token = record?.secret?.accessToken;
      if (typeof token === 'string') return token;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no token stored in ${grant}`);
  }
  const consentUrl = async (running: RunningConnect) => new URL((await waitForOutput(running, /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+(?=\n)/, 15_000))[0]);

  /** The MCP SDK's client, through keyway (HTTPS_PROXY's job, done with undici's ProxyAgent) trusting keyway's CA. */
  async function mcpClient(): Promise<{ client: Client; close: () => Promise<void> }> {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), {
      fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    });
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(transport);
    return {
      client,
      close: async () => {
        await client.close();
        await dispatcher.close();
      },
    };
  }

  it('finds the authorization server, registers a client, runs PKCE with the resource, and the proxy injects the token', async () => {
    // Without a grant keyway tunnels blind and the server refuses: its 401 names its metadata.
    const bare = await undiciFetch(mcp.url, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
      dispatcher: new ProxyAgent({ uri: proxy.url, requestTls: { ca: TLS_FIXTURES.ca } }),
    });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toContain('resource_metadata=');

    const running = connect(['--mcp', mcp.url, '--no-browser', '--json']);
    const consent = await consentUrl(running);
    expect(consent.searchParams.get('code_challenge_method')).toBe('S256');
    expect(consent.searchParams.get('resource')).toBe(mcp.url);
    const clientId = consent.searchParams.get('client_id');
    expect(clientId).toBeTruthy();
    const redirect = await auth.completeAuthorization(consent.href);
    // The authorization server names itself in its answer (RFC 9207), and keyway checked it.
    expect(new URL(redirect).searchParams.get('iss')).toBe(auth.issuer);
    expect((await fetch(redirect)).status).toBe(200);
    expect(await running.exit, running.stderr()).toBe(0);
    outputs.push(running.stdout(), running.stderr());
    expect(JSON.parse(running.stdout())).toMatchObject({ grant: 'mcp-api', provider: 'mcp', mcp: mcp.url, refresh_token: 'stored', client: 'registered' });
    // The running proxy takes the new grant from the store within a second.
    for (let i = 0; i < 50 && proxy.running.counts().grants === 0; i++) await new Promise((r) => setTimeout(r, 100));
    // The grant marks the server's path as an MCP endpoint: its messages are judged by MCP rules.
    const stored = proxy.running.services.store.get<{ mcp?: { paths: string[] } }>('grant:mcp-api');
    expect(stored?.mcp).toEqual({ paths: ['/mcp'] });

    const { client, close } = await mcpClient();
    try {
      const answer = await client.callTool({ name: 'whoami', arguments: {} });
      // The server saw keyway's registered client's token; the agent never held it.
      expect(answer.content).toEqual([{ type: 'text', text: `client ${clientId}` }]);
      const token = mcp.accepted.at(-1)!;
      expect((await auth.inspect(token))['aud']).toBe(mcp.url);
    } finally {
      await close();
    }
  });

  it('refreshes the token at the discovered token endpoint, for the same resource', async () => {
    const before = auth.tokenCalls['refresh_token'] ?? 0;
    const refresh = await proxy.cli(['refresh', 'mcp-api']);
    outputs.push(refresh.stdout, refresh.stderr);
    expect(refresh.code, refresh.stderr).toBe(0);
    expect(auth.tokenCalls['refresh_token']).toBe(before + 1);
    const previous = mcp.accepted.at(-1);
    const { client, close } = await mcpClient();
    try {
      // The running proxy takes the refreshed token from the store within a second.
      for (let i = 0; i < 30; i++) {
        await client.callTool({ name: 'whoami', arguments: {} });
        if (mcp.accepted.at(-1) !== previous) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await close();
    }
    const token = mcp.accepted.at(-1)!;
    expect(token).not.toBe(previous);
    expect((await auth.inspect(token))['aud']).toBe(mcp.url);
  });

  it('a Client ID Metadata Document where the server takes them: the client_id is its URL, fetched by the server, no registration', async () => {
    const running = connect(['--mcp', mcp.url, '--no-browser', '--json', '--grant', 'mcp-cimd', '--client-metadata-url', documentUrl]);
    const consent = await consentUrl(running);
    expect(consent.searchParams.get('client_id')).toBe(documentUrl);
    const redirect = await auth.completeAuthorization(consent.href);
    expect((await fetch(redirect)).status).toBe(200);
    expect(await running.exit, running.stderr()).toBe(0);
    outputs.push(running.stdout(), running.stderr());
    expect(JSON.parse(running.stdout())).toMatchObject({ grant: 'mcp-cimd', client: 'metadata_document' });
    expect(fetched).toContain('/keyway/client.json');
    // The token was issued to the document's client, and works through keyway.
    const token = await waitForToken('mcp-cimd');
    expect((await auth.inspect(token))['client_id']).toBe(documentUrl);
  });

  it('a document the server cannot verify (its client_id is another URL) is refused by the server, and keyway stores nothing', async () => {
    const elsewhere = documentUrl.replace('/keyway/client.json', '/other/client.json');
    const running = connect(['--mcp', mcp.url, '--no-browser', '--grant', 'mcp-bad-doc', '--client-metadata-url', elsewhere]);
    const consent = await consentUrl(running);
    // The hosted document names another client_id than this URL: the server refuses the client.
    await expect(auth.completeAuthorization(consent.href)).rejects.toThrow();
    running.child.kill();
    await running.exit;
    outputs.push(running.stderr());
    expect(proxy.running.services.store.get('grant:mcp-bad-doc')).toBeUndefined();
  });

  describe('the authorization response names its issuer (RFC 9207)', () => {
    async function answered(change: (params: URLSearchParams) => void) {
      const running = connect(['--mcp', mcp.url, '--no-browser', '--grant', 'mcp-mixup']);
      const consent = await consentUrl(running);
      const redirect = new URL(await auth.completeAuthorization(consent.href));
      change(redirect.searchParams);
      const page = await fetch(redirect);
      expect(page.status).toBe(400);
      expect(await running.exit).not.toBe(0);
      outputs.push(running.stderr());
      expect(proxy.running.services.store.get('grant:mcp-mixup')).toBeUndefined();
      return running.stderr();
    }

    it('refuses an answer naming another issuer: a mix-up', async () => {
      const stderr = await answered((p) => p.set('iss', 'https://attacker.example.test'));
      expect(stderr).toContain(`names the issuer "https://attacker.example.test", not ${auth.issuer}`);
    });

    it('refuses an answer without iss from a server that says it always sends one', async () => {
      const stderr = await answered((p) => p.delete('iss'));
      expect(stderr).toContain('has no iss');
    });
  });

  describe('hostile metadata', () => {
    let liar: Server;
    let served: Record<string, unknown>;
    let liarUrl: string;

    beforeAll(async () => {
      liar = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
        const doc = served[req.url ?? ''];
        if (req.url === '/mcp') {
          res
            .writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${liarUrl.replace('/mcp', '')}/.well-known/oauth-protected-resource/mcp"` })
            .end();
        } else if (doc) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
        else res.writeHead(404).end();
      });
      liar.listen(0, '127.0.0.1');
      await once(liar, 'listening');
      liarUrl = `https://other.example.test:${(liar.address() as AddressInfo).port}/mcp`;
    });
    afterAll(async () => {
      await new Promise((r) => liar?.close(r));
    });

    async function refused(): Promise<string> {
      const running = connect(['--mcp', liarUrl, '--no-browser']);
      expect(await running.exit).not.toBe(0);
      outputs.push(running.stderr());
      return running.stderr();
    }

    it('refuses resource metadata that names another resource', async () => {
      served = { '/.well-known/oauth-protected-resource/mcp': { resource: 'https://api.example.test/mcp', authorization_servers: [auth.issuer] } };
      expect(await refused()).toContain('names the resource https://api.example.test/mcp');
    });

    it('refuses an authorization server whose metadata names another issuer, or that offers no S256', async () => {
      const origin = liarUrl.replace('/mcp', '');
      served = {
        '/.well-known/oauth-protected-resource/mcp': { resource: liarUrl, authorization_servers: [origin] },
        '/.well-known/oauth-authorization-server': { issuer: auth.issuer, authorization_endpoint: `${origin}/auth`, token_endpoint: `${origin}/token` },
      };
      expect(await refused()).toContain(`names the issuer ${auth.issuer}, not ${origin}`);
      served['/.well-known/oauth-authorization-server'] = {
        issuer: origin,
        authorization_endpoint: `${origin}/auth`,
        token_endpoint: `${origin}/token`,
        code_challenge_methods_supported: ['plain'],
      };
      expect(await refused()).toContain('S256');
    });
  });
});
