// MCP's 2026-07-28 revision through keyway (issue 34): the 2026 SDK's client and server
// (@modelcontextprotocol/client and server 2.x), stateless, with the MCP-Protocol-Version / Mcp-Method
// / Mcp-Name headers; the same server's 2025 fallback for the 1.x SDK's client and the 2.x client in
// legacy mode. An agent on either revision calls exactly the tools its rules allow, and sees only
// those listed. Then the hostile cases, sent raw: headers that say another thing than the body (a
// router or server going by the header would run what keyway never judged) are refused with
// mcp_unreadable and JSON-RPC's -32020 (the spec's HeaderMismatch), and reach nothing.
import { readFileSync } from 'node:fs';
import { Client as Client2026, StreamableHTTPClientTransport as Transport2026 } from '@modelcontextprotocol/client';
import { Client as Client2025 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport2025 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startMcpServer2026, type TestMcpServer2026 } from '../helpers/mcp-server-2026.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-tracker-2026`;
const REVISION = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': REVISION,
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

describe('MCP 2026-07-28 through keyway, and 2025 clients on the same server', () => {
  let server: TestMcpServer2026;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    server = await startMcpServer2026(TOKEN);
    proxy = await startProxy({
      env: { TRACKER: TOKEN, BOT_KEY: 'bot-key-2026' },
      config: {
        audit: { refusal_budget: 500 },
        grants: { tracker: { type: 'bearer', domains: ['api.example.test'], secret: 'env:TRACKER', mcp: { paths: ['/mcp'] } } },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['tracker'],
            rules: [
              { grant: 'tracker', tools: ['search_*', 'get_issue'] },
              { grant: 'tracker', deny: true, tools: ['delete_*'] },
            ],
          },
        },
      },
    });
    dispatcher = new ProxyAgent({ uri: `http://bot:bot-key-2026@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await server?.close();
  });

  const viaKeyway = (url: string | URL, init?: RequestInit) => undiciFetch(url as string, { ...(init as object), dispatcher }) as unknown as Promise<Response>;

  async function exercise(client: { listTools(): Promise<{ tools: Array<{ name: string }> }>; callTool(p: object): Promise<unknown> }) {
    const { tools } = await client.listTools();
    const found = await client.callTool({ name: 'search_issues', arguments: { query: 'bugs' } });
    const refused = await client.callTool({ name: 'delete_issue', arguments: { id: 7 } }).then(
      () => undefined,
      (err: Error & { code?: number; data?: { code?: string } }) => ({ code: err.code, data: err.data?.code, message: err.message }),
    );
    return { tools: tools.map((t) => t.name).sort(), found: (found as { content: unknown }).content, refused };
  }

  for (const mode of ['json', 'sse'] as const) {
    it(`the 2026 client (revision ${REVISION}, ${mode} answers): lists the allowed tools, runs them, is refused the rest`, async () => {
      server.mode = mode;
      const before = server.calls.length;
      const seenFrom = server.seen.length;
      const client = new Client2026({ name: 'agent', version: '2.0.0' }, { versionNegotiation: { mode: { pin: REVISION } } });
      await client.connect(new Transport2026(new URL(server.url()), { fetch: viaKeyway }));
      try {
        const r = await exercise(client);
        expect(r.tools).toEqual(['get_issue', 'search_issues']);
        expect(r.found).toEqual([{ type: 'text', text: 'search_issues ran' }]);
        expect(r.refused).toMatchObject({ code: -32001, data: 'policy_denied' });
        expect(r.refused?.message).toContain('delete_*');
      } finally {
        await client.close();
      }
      expect(server.calls.slice(before).map((c) => c.tool)).toEqual(['search_issues']);
      // The client spoke 2026: every request carried the revision headers, and keyway passed them on.
      const seen = server.seen.slice(seenFrom);
      expect(seen.length).toBeGreaterThan(0);
      for (const s of seen) expect(s.version).toBe(REVISION);
      expect(seen).toContainEqual({ version: REVISION, method: 'tools/call', name: 'search_issues' });
    });
  }

  it('the 2025 clients on the same server: the 1.x SDK and the 2.x client in legacy mode', async () => {
    server.mode = 'json';
    const legacy = new Client2025({ name: 'agent', version: '1.0.0' });
    await legacy.connect(new Transport2025(new URL(server.url()), { fetch: viaKeyway }));
    const two = new Client2026({ name: 'agent', version: '2.0.0' }, { versionNegotiation: { mode: 'legacy' } });
    await two.connect(new Transport2026(new URL(server.url()), { fetch: viaKeyway }));
    try {
      for (const client of [legacy, two]) {
        const before = server.calls.length;
        const r = await exercise(client as never);
        expect(r.tools).toEqual(['get_issue', 'search_issues']);
        expect(r.refused).toMatchObject({ code: -32001, data: 'policy_denied' });
        expect(server.calls.slice(before).map((c) => c.tool)).toEqual(['search_issues']);
      }
    } finally {
      await legacy.close();
      await two.close();
    }
  });

  const call = (id: number, name: string, args: Record<string, unknown>) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, _meta: META },
  });

  async function post(headers: Record<string, string | string[]>, body: unknown, through: 'keyway' | 'direct' = 'keyway') {
    const direct = through === 'direct' ? new Agent({ connect: { ca: TLS_FIXTURES.ca, servername: 'api.example.test' } }) : undefined;
    try {
      const res = await request(through === 'keyway' ? server.url() : `https://127.0.0.1:${server.port}/mcp`, {
        dispatcher: direct ?? dispatcher,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(through === 'direct' ? { authorization: `Bearer ${TOKEN}` } : {}),
          ...headers,
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.body.text();
      outputs.push(text);
      return {
        status: res.statusCode,
        code: res.headers['x-keyway-error'],
        text,
        json: () => JSON.parse(text) as { id?: unknown; error?: { code: number; message: string; data?: { code: string } } },
      };
    } finally {
      await direct?.close();
    }
  }

  const modern = (method: string, name?: string) => ({
    'mcp-protocol-version': REVISION,
    'mcp-method': method,
    ...(name === undefined ? {} : { 'mcp-name': name }),
  });

  it('the server itself refuses a header that disagrees with the body (what the spec asks of it), and runs an agreeing one', async () => {
    server.mode = 'json';
    const before = server.calls.length;
    const refused = await post(modern('tools/call', 'get_issue'), call(1, 'search_issues', { query: 'x' }), 'direct');
    expect(refused.status).toBe(400);
    expect(refused.json().error?.code).toBe(-32020);
    const ran = await post(modern('tools/call', 'search_issues'), call(2, 'search_issues', { query: 'x' }), 'direct');
    expect(ran.status).toBe(200);
    expect(server.calls.slice(before).map((c) => c.tool)).toEqual(['search_issues']);
  });

  const cases: Array<[string, Record<string, string | string[]>, unknown, RegExp]> = [
    [
      'Mcp-Name naming a denied tool over an allowed call',
      modern('tools/call', 'delete_issue'),
      call(3, 'search_issues', { query: 'x' }),
      /Mcp-Name says "delete_issue"/,
    ],
    ['Mcp-Method naming a listing over a denied call', modern('tools/list'), call(4, 'delete_issue', { id: 1 }), /Mcp-Method says "tools\/list"/],
    [
      'Mcp-Name base64 naming a denied tool',
      modern('tools/call', `=?base64?${Buffer.from('delete_issue').toString('base64')}?=`),
      call(5, 'search_issues', { query: 'x' }),
      /Mcp-Name says "delete_issue"/,
    ],
    [
      'Mcp-Name with base64 that is not canonical',
      modern('tools/call', '=?base64?c2VhcmNoX2lzc3Vlcw?='),
      call(6, 'search_issues', { query: 'x' }),
      /invalid =\?base64/,
    ],
    [
      'Mcp-Name given twice (the client joins them)',
      { ...modern('tools/call'), 'mcp-name': ['search_issues', 'delete_issue'] },
      call(7, 'search_issues', { query: 'x' }),
      /Mcp-Name says "search_issues, delete_issue"/,
    ],
    [
      'Mcp-Name on a method that names nothing',
      modern('tools/list', 'delete_issue'),
      { jsonrpc: '2.0', id: 8, method: 'tools/list', params: { _meta: META } },
      /names nothing/,
    ],
    ['a 2026 request without Mcp-Method', { 'mcp-protocol-version': REVISION }, call(9, 'search_issues', { query: 'x' }), /without the Mcp-Method header/],
    ['a 2026 tools/call without Mcp-Name', modern('tools/call'), call(10, 'search_issues', { query: 'x' }), /without the Mcp-Name header/],
    [
      'MCP-Protocol-Version disagreeing with the envelope',
      { ...modern('tools/call', 'search_issues'), 'mcp-protocol-version': '2025-11-25' },
      call(11, 'search_issues', { query: 'x' }),
      /envelope "2026-07-28"/,
    ],
    ['a batch on 2026', { 'mcp-protocol-version': REVISION }, [call(12, 'search_issues', { query: 'x' })], /a batch on revision/],
    [
      'Mcp-Method on a 2025 batch',
      { 'mcp-method': 'tools/call' },
      [{ jsonrpc: '2.0', id: 13, method: 'tools/call', params: { name: 'search_issues', arguments: { query: 'x' } } }],
      /on a batch/,
    ],
    [
      'Mcp-Method on a 2025 request, disagreeing',
      { 'mcp-method': 'ping' },
      { jsonrpc: '2.0', id: 14, method: 'tools/call', params: { name: 'delete_issue', arguments: { id: 1 } } },
      /Mcp-Method says "ping"/,
    ],
    ['a response posted on 2026', { 'mcp-protocol-version': REVISION }, { jsonrpc: '2.0', id: 15, result: {} }, /a response posted on revision/],
  ];

  for (const [what, headers, body, reason] of cases) {
    it(`refuses ${what}: 400 mcp_unreadable (-32020), and the server sees nothing`, async () => {
      const seen = server.seen.length;
      const r = await post(headers, body);
      expect(r.status, r.text).toBe(400);
      expect(r.code).toBe('mcp_unreadable');
      const answer = r.json();
      const first = Array.isArray(answer) ? (answer[0] as typeof answer) : answer;
      expect(first.error).toMatchObject({ code: -32020, data: { code: 'mcp_unreadable' } });
      expect(first.error?.message).toMatch(reason);
      expect(server.seen.length).toBe(seen);
    });
  }

  it('audits the refusals as deny with code mcp_unreadable; the allowed calls as inject', async () => {
    const lines = await waitFor(() => {
      const all = proxy.auditLines();
      return all.filter((l) => l['code'] === 'mcp_unreadable').length >= cases.length ? all : undefined;
    }, "the refusals' audit lines");
    expect(lines.filter((l) => l['code'] === 'mcp_unreadable')).toHaveLength(cases.length);
    expect(lines.some((l) => l['decision'] === 'inject' && (l['mcp'] as { tool?: string } | undefined)?.tool === 'search_issues')).toBe(true);
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
