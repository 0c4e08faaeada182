// MCP-aware policy (issue 27): the MCP SDK's own client, through keyway (proxy and CA), to the SDK's
// own server on loopback, with keyway injecting the server's token. The agent's rules name tools:
// it sees only those in tools/list (JSON and SSE answers), its calls of others come back as
// JSON-RPC errors and never reach the server, an argument matcher holds, an approval works per
// tool, and every call is audited with its tool and an argument hash, never the values. Then the
// hostile cases, sent raw: mixed case, look-alike letters, duplicate keys, a call smuggled in a
// batch, a method with a trailing space, JSON nested 100,000 deep.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { REPO } from '../helpers/deploy-files.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';

const TOKEN = `${CANARY}-tracker-token`;
const ARG_CANARY = `${CANARY}-in-an-argument`;

describe('MCP tool policy', () => {
  let server: TestMcpServer;
  let proxy: TestProxy;
  let admin: AdminClient;
  const outputs: string[] = [];
  const dispatchers: ProxyAgent[] = [];

  beforeAll(async () => {
    server = await startMcpServer(TOKEN);
    proxy = await startProxy({
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-1', READER_KEY: 'reader-key-1' },
      config: {
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['tracker'],
            rules: [
              { grant: 'tracker', tools: ['search_*', 'get_issue'] },
              { grant: 'tracker', tools: ['create_comment'], args: { repo: 'acme/*' } },
              { grant: 'tracker', tools: ['close_issue'], approve: 'human', approval: { wait: 0 } },
              { grant: 'tracker', deny: true, tools: ['delete_*'] },
            ],
          },
          // Lists and reads the protocol, calls nothing.
          reader: { key: 'env:READER_KEY', grants: ['tracker'], rules: [{ grant: 'tracker', deny: true, mcp_methods: ['tools/call'] }] },
        },
      },
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    for (const d of dispatchers) await d.close().catch(() => undefined);
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const secret of [TOKEN, ARG_CANARY])
      for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, secret), 'a canary in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  function through(agent: string, key: string): ProxyAgent {
    const d = new ProxyAgent({ uri: `http://${agent}:${key}@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    dispatchers.push(d);
    return d;
  }

  async function sdkClient(agent = 'bot', key = 'bot-key-1'): Promise<Client> {
    const dispatcher = through(agent, key);
    const transport = new StreamableHTTPClientTransport(new URL(server.url()), {
      fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
    });
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(transport);
    return client;
  }

  /** A raw JSON-RPC POST through keyway, as a hostile agent would send it. */
  async function post(body: string, agent = 'bot', key = 'bot-key-1') {
    const res = await request(server.url(), {
      dispatcher: through(agent, key),
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text, json: () => JSON.parse(text) as unknown };
  }

  const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args },
  });
  const ranTools = () => server.calls.map((c) => c.tool);

  it('the server wants its token: a client without keyway is refused, and keyway injects it', async () => {
    const direct = new Agent({ connect: { ca: TLS_FIXTURES.ca, servername: 'api.example.test' } });
    try {
      for (const authorization of [undefined, 'Bearer not-the-token']) {
        const res = await request(`https://127.0.0.1:${server.port}/mcp`, {
          dispatcher: direct,
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          body: JSON.stringify(call(1, 'search_issues', { query: 'x' })),
        });
        await res.body.dump();
        expect(res.statusCode).toBe(401);
      }
    } finally {
      await direct.close();
    }
    const through = await post(JSON.stringify(call(1, 'search_issues', { query: 'x' })));
    expect(through.status).toBe(200);
  });

  for (const mode of ['json', 'sse'] as const) {
    it(`lists only the tools the agent may call, runs the allowed ones, answers the rest as JSON-RPC errors (${mode} answers)`, async () => {
      server.mode = mode;
      const client = await sdkClient();
      try {
        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name).sort()).toEqual(['close_issue', 'create_comment', 'get_issue', 'search_issues']);
        const found = await client.callTool({ name: 'search_issues', arguments: { query: `bugs ${ARG_CANARY}` } });
        expect(found.content).toEqual([{ type: 'text', text: 'search_issues ran' }]);
        const before = server.calls.length;
        const refused = await client.callTool({ name: 'delete_issue', arguments: { id: 7 } }).then(
          () => undefined,
          (err: Error & { code?: number; data?: { code: string } }) => err,
        );
        expect(refused?.code).toBe(-32001);
        expect(refused?.message).toContain('delete_*');
        expect(refused?.data?.code).toBe('policy_denied');
        expect(server.calls.length).toBe(before);
      } finally {
        await client.close();
      }
    });
  }

  it('works for an agent as it runs: keyway run sets HTTPS_PROXY and the CA, and the SDK uses Node 24 fetch as it is', async () => {
    server.mode = 'sse';
    const dir = mkdtempSync(join(tmpdir(), 'keyway-mcp-agent-'));
    const sdk = (path: string) => pathToFileURL(join(REPO, 'node_modules/@modelcontextprotocol/sdk/dist/esm', path)).href;
    const script = join(dir, 'agent.mjs');
    writeFileSync(
      script,
      [
        `import { Client } from ${JSON.stringify(sdk('client/index.js'))};`,
        `import { StreamableHTTPClientTransport } from ${JSON.stringify(sdk('client/streamableHttp.js'))};`,
        "const client = new Client({ name: 'agent', version: '1.0.0' });",
        'await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));',
        'const tools = (await client.listTools()).tools.map((t) => t.name).sort();',
        "const ran = await client.callTool({ name: 'get_issue', arguments: { id: 1 } });",
        'let refused;',
        "try { await client.callTool({ name: 'delete_issue', arguments: { id: 1 } }); } catch (err) { refused = { code: err.code, message: err.message }; }",
        'console.log(JSON.stringify({ tools, ran: ran.content, refused }));',
        'await client.close();',
      ].join('\n'),
    );
    try {
      const r = await proxy.cli(['run', '--agent', 'bot', '--', process.execPath, script, server.url()]);
      outputs.push(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        tools: ['close_issue', 'create_comment', 'get_issue', 'search_issues'],
        ran: [{ type: 'text', text: 'get_issue ran' }],
        refused: { code: -32001, message: expect.stringContaining('delete_*') },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      server.mode = 'json';
    }
  });

  it('holds an argument matcher: create_comment only on acme/* repositories', async () => {
    server.mode = 'json';
    const client = await sdkClient();
    try {
      await client.callTool({ name: 'create_comment', arguments: { repo: 'acme/api', body: 'hello' } });
      const refused = await client.callTool({ name: 'create_comment', arguments: { repo: 'evil/api', body: 'hello' } }).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused?.message).toContain('argument repo does not match "acme/*"');
      expect(server.calls.filter((c) => c.tool === 'create_comment').map((c) => c.args['repo'])).toEqual(['acme/api']);
    } finally {
      await client.close();
    }
  });

  it('asks a person per tool: close_issue gets approval_required naming the approval; approved, the same call runs once', async () => {
    const client = await sdkClient();
    try {
      const first = await client.callTool({ name: 'close_issue', arguments: { id: 42 } }).then(
        () => undefined,
        (err: Error & { data?: { code: string; approval?: { id: string } } }) => err,
      );
      expect(first?.data?.code).toBe('approval_required');
      const id = first!.data!.approval!.id;
      const listed = ((await admin.call('GET', '/api/approvals')).body as { approvals: Array<{ id: string; tool: string; path: string }> }).approvals;
      expect(listed.find((a) => a.id === id)).toMatchObject({ tool: 'close_issue', path: '/mcp' });
      // Another issue is another call: asked anew, not covered.
      const other = await client.callTool({ name: 'close_issue', arguments: { id: 43 } }).then(
        () => undefined,
        (err: Error & { data?: { approval?: { id: string } } }) => err,
      );
      expect(other?.data?.approval?.id).not.toBe(id);
      expect(ranTools()).not.toContain('close_issue');
      expect((await admin.call('POST', `/api/approvals/${id}/approve`, {})).status).toBe(200);
      // The client's retry has a new JSON-RPC id; it is the same call, and the yes covers it, once.
      await client.callTool({ name: 'close_issue', arguments: { id: 42 } });
      expect(server.calls.filter((c) => c.tool === 'close_issue')).toEqual([{ tool: 'close_issue', args: { id: 42 } }]);
      const spent = await client.callTool({ name: 'close_issue', arguments: { id: 42 } }).then(
        () => undefined,
        (err: Error & { data?: { code: string } }) => err,
      );
      expect(spent?.data?.code).toBe('approval_required');
    } finally {
      await client.close();
    }
  });

  it('a tools/call smuggled in a batch after an allowed one refuses the whole batch; the server runs neither', async () => {
    const before = server.calls.length;
    const r = await post(JSON.stringify([call(1, 'search_issues', { query: 'a' }), call(2, 'delete_issue', { id: 1 })]));
    expect(r.status).toBe(200);
    expect(r.code).toBe('policy_denied');
    const answers = r.json() as Array<{ id: number; error: { code: number; message: string; data: { code: string } } }>;
    expect(answers.map((a) => a.id)).toEqual([1, 2]);
    expect(answers[0]!.error.message).toContain('not sent');
    expect(answers[1]!.error.data.code).toBe('policy_denied');
    expect(server.calls.length).toBe(before);
  });

  it('refuses a tool name in another case, and with a look-alike letter', async () => {
    const before = server.calls.length;
    // Deny globs read any case: Delete_Issue is delete_*.
    const mixed = await post(JSON.stringify(call(1, 'Delete_Issue', { id: 1 })));
    expect((mixed.json() as { error: { message: string } }).error.message).toContain('delete_*');
    // Allow globs read as written: Search_Issues is not search_*.
    const upper = await post(JSON.stringify(call(2, 'Search_Issues', { query: 'x' })));
    expect((upper.json() as { error: { data: { code: string } } }).error.data.code).toBe('policy_denied');
    // A Cyrillic е in search_issues: not a tool name at all.
    const lookalike = await post(JSON.stringify(call(3, 's\u0435arch_issues', { query: 'x' })));
    expect(lookalike.status).toBe(400);
    expect((lookalike.json() as { id: number; error: { message: string } }).error.message).toContain('not 1 to 128 of A-Z');
    expect(server.calls.length).toBe(before);
  });

  it('refuses duplicate keys, a method with a trailing space, and JSON nested 100,000 deep, at once', async () => {
    const before = server.calls.length;
    const dup = await post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","name":"delete_issue","arguments":{"id":1}}}');
    expect(dup.status).toBe(400);
    expect(dup.text).toContain('appears twice');
    const spaced = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call ', params: { name: 'delete_issue', arguments: {} } }));
    expect(spaced.status).toBe(400);
    expect(spaced.text).toContain('is not a method name');
    const started = Date.now();
    const deep = await post(
      `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`,
    );
    expect(deep.status).toBe(400);
    expect(deep.text).toContain('nested deeper than 64');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(server.calls.length).toBe(before);
    // keyway still serves the agent afterwards.
    expect((await post(JSON.stringify(call(4, 'get_issue', { id: 1 })))).status).toBe(200);
  });

  it('refuses override headers on the endpoint, one naming it from another path, and a body on a GET', async () => {
    const before = server.calls.length;
    const sneaky = JSON.stringify(call(1, 'delete_issue', { id: 1 }));
    const asGet = await request(server.url(), {
      dispatcher: through('bot', 'bot-key-1'),
      method: 'GET',
      headers: { 'content-type': 'application/json', 'x-http-method-override': 'POST' },
      body: sneaky,
    });
    const asGetText = await asGet.body.text();
    outputs.push(asGetText);
    expect(asGet.statusCode, asGetText).toBe(400);
    // The reader has no allow rule, so the grant's other paths are open to it: only the MCP stage stands here.
    const elsewhere = await request(server.url().replace('/mcp', '/other'), {
      dispatcher: through('reader', 'reader-key-1'),
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-original-url': '/mcp' },
      body: sneaky,
    });
    outputs.push(await elsewhere.body.text());
    expect(elsewhere.statusCode).toBe(400);
    expect(elsewhere.headers['x-keyway-error']).toBe('bad_request');
    expect(server.calls.length).toBe(before);
  });

  it('protocol methods pass unless a rule names them: the reader initializes and lists, but cannot call', async () => {
    const client = await sdkClient('reader', 'reader-key-1');
    try {
      // tools/list passes; it lists nothing, since the reader may call nothing.
      const { tools } = await client.listTools();
      expect(tools).toEqual([]);
      const refused = await client.callTool({ name: 'search_issues', arguments: { query: 'x' } }).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused?.message).toContain('tools/call');
    } finally {
      await client.close();
    }
  });

  it('a store grant takes MCP endpoints from the command line, and shows them', async () => {
    const add = await proxy.cli(
      ['grants', 'add', 'tracker2', '--type', 'bearer', '--domains', 'other.example.test', '--mcp-path', '/mcp,/v2/mcp', '--secret-stdin'],
      TOKEN,
    );
    expect(add.code, add.stderr).toBe(0);
    const shown = await proxy.cli(['grants', 'show', 'tracker2']);
    expect(shown.stdout).toMatch(/MCP endpoints:\s+\/mcp, \/v2\/mcp/);
    const bad = await proxy.cli(['grants', 'set', 'tracker2', '--mcp-path', 'mcp']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('starting with /');
    expect((await proxy.cli(['grants', 'rm', 'tracker2'])).code).toBe(0);
  });

  it('audits each call with its method, tool and an argument hash, never the values', async () => {
    const lines = proxy.auditLines().filter((l) => l['mcp'] !== undefined);
    const search = lines.find((l) => (l['mcp'] as { tool?: string }).tool === 'search_issues' && l['decision'] === 'inject');
    expect(search?.['mcp']).toMatchObject({ method: 'tools/call', tool: 'search_issues', args_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const denied = lines.find((l) => (l['mcp'] as { tool?: string }).tool === 'delete_issue' && l['decision'] === 'deny');
    expect(denied).toMatchObject({ code: 'policy_denied', status: 200 });
    const listed = lines.find((l) => (l['mcp'] as { method: string }).method === 'tools/list' && l['agent'] === 'bot');
    expect(listed?.['mcp']).toMatchObject({ hidden: 1 });
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
